import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { createRuntime, type Runtime, type RuntimeConfig } from "../src/index.ts";

/** A fresh folder for this test file's databases, removed when the file's tests end. */
export function tempDir(prefix = "underway-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let counter = 0;

/** A path for a new SQLite file of its own. */
export function tempDb(dir: string): string {
  return join(dir, `t${process.pid}-${++counter}.db`);
}

/** A started runtime on its own SQLite file, stopped when the file's tests end. */
export async function startRuntime(config: Partial<RuntimeConfig> & { dir: string }): Promise<Runtime> {
  const { dir, ...rest } = config;
  // Test files define their task classes inline: they run on the worker's event loop unless a
  // test asks for isolation (the isolation tests use task modules under test/fixtures/).
  const runtime = createRuntime({ db: tempDb(dir), logger: false, isolation: "none", ...rest });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return runtime;
}

/** Resolves when fn returns a truthy value; checks on every turn of the event loop, bounded. */
/**
 * `pending`'s outcome, the mocked clock (node:test's mock.timers, setTimeout enabled) moved on a
 * quarter second at a time until it comes; fails when it has not come `limitMs` after (mocked).
 */
export async function settledWithinMockedMs<T>(timers: { tick(ms: number): void }, pending: Promise<T>, limitMs: number, what: string): Promise<T> {
  let settled = false;
  void pending.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let movedMs = 0; !settled; movedMs += 250) {
    if (movedMs > limitMs) throw new Error(`${what} took longer than ${limitMs} ms of the mocked clock`);
    await new Promise((resolve) => setImmediate(resolve));
    timers.tick(250);
  }
  return pending;
}

export async function until<T>(fn: () => T | Promise<T>, what: string, limitMs = 5_000): Promise<NonNullable<T>> {
  const end = Date.now() + limitMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A promise with its resolve function, for tasks that wait for the test. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** The PostgreSQL server tests use (trust authentication on this machine and in CI). */
export const TEST_POSTGRES_URL = process.env.UNDERWAY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A new schema name for one test store; dropped when the file's tests end. */
export function tempSchema(): string {
  const name = `t_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
  after(async () => {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      // A runtime of the test may still be stopping (hooks run in the order they were added) and
      // hold locks the drop needs in another order: PostgreSQL then picks the drop as the
      // deadlock's victim. Trying again once it has gone on is all it takes.
      for (let attempt = 1; ; attempt++) {
        try {
          await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== "40P01" || attempt === 5) {
            // Never fail the hook: the hooks after it (stopping runtimes) must still run.
            process.stderr.write(`warning: could not drop the test schema ${name}: ${(error as Error).message}\n`);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
        }
      }
    } finally {
      await client.end();
    }
  });
  return name;
}
