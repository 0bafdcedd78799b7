import { after } from "node:test";
import { Worker } from "node:worker_threads";
import { Platform, type PlatformConfig } from "../../src/platform/platform.ts";
import type { Logger } from "../../src/tasks/logger.ts";
import { tempDb, tempDir, tempSchema, TEST_POSTGRES_URL } from "../helpers.ts";

export const STORES = ["sqlite", "postgres"] as const;

/** A started platform on a fresh store of the given kind, stopped when the file's tests end. */
export async function startPlatform(store: (typeof STORES)[number], config: Partial<PlatformConfig> = {}): Promise<Platform> {
  const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
  const platform = await Platform.start({
    db,
    logger: false,
    secret: "platform tests secret value",
    adminPassword: "supervisor-pass",
    ...config,
  });
  after(() => platform.stop({ graceMs: 0 }));
  return platform;
}

/**
 * Should the code under test block this file's thread for good, no timer of it fires (a test's
 * timeout included): a watchdog thread then ends the process after 30 s, saying so under `name`,
 * so that the file fails instead of hanging.
 */
export function endIfBlocked(name: string): void {
  const heartbeat = new Int32Array(new SharedArrayBuffer(4));
  const watchdog = new Worker(
    `const { workerData } = require("node:worker_threads");
     let last = -1, since = Date.now();
     setInterval(() => {
       const now = Atomics.load(workerData.heartbeat, 0);
       if (now !== last) { last = now; since = Date.now(); return; }
       if (Date.now() - since > 30000) {
         process.stderr.write(workerData.name + ": the test's event loop has not run for 30 s: ending the process\\n");
         process.kill(process.pid, "SIGKILL");
       }
     }, 500);`,
    { eval: true, workerData: { heartbeat, name } },
  );
  watchdog.unref();
  const beat = setInterval(() => Atomics.add(heartbeat, 0, 1), 100);
  beat.unref();
  after(() => watchdog.terminate());
}

/**
 * A logger that keeps what a platform logged as errors: each its message, `describe`'s reading of
 * the record's other fields when given, and its error's message, joined by " | ".
 */
export function recordingLogger(describe?: (record: Record<string, unknown>) => string): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  const none = (): void => undefined;
  const logger: Logger = {
    debug: none,
    info: none,
    warn: none,
    error: (objectOrMessage: object | string, message?: string) => {
      const record = typeof objectOrMessage === "object" ? (objectOrMessage as Record<string, unknown>) : {};
      const err = record.err instanceof Error ? record.err.message : "";
      const text = typeof objectOrMessage === "string" ? objectOrMessage : (message ?? "");
      errors.push((describe ? [text, describe(record), err] : [text, err]).join(" | "));
    },
    child: () => logger,
  };
  return { logger, errors };
}
