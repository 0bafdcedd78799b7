/**
 * A stop that comes while the runtime is still starting (SIGTERM during boot, a failed health
 * check): it waits for the start, then stops what the start started, so nothing runs on against
 * the closed store.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { createRuntime, type RuntimeConfig } from "../../src/index.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

it("stops the worker and maintenance that a start under way goes on to start", async () => {
  const lines: string[] = [];
  const at = (o: object | string, m?: string): void => void lines.push(typeof o === "string" ? o : (m ?? ""));
  const logger: NonNullable<Exclude<RuntimeConfig["logger"], false>> = { debug: at, info: at, warn: at, error: at, child: () => logger };
  const runtime = createRuntime({ db: tempDb(dir), logger, isolation: "none" });
  const started = runtime.start();
  const stopped = runtime.stop({ graceMs: 0 });
  await started;
  await stopped;
  const inside = runtime as unknown as { state: string; elector: { timer: unknown }; rescuer: { timer: unknown }; continuer: { timer: unknown } };
  assert.equal(inside.state, "stopped");
  // What the start started was stopped with the rest.
  assert.equal(inside.elector.timer, null, "the leader election still runs");
  assert.equal(inside.rescuer.timer, null, "the rescuer still runs");
  assert.equal(inside.continuer.timer, null, "the continuer still runs");
  assert.ok(lines.includes("underway runtime started"));
  assert.equal(lines.filter((l) => /failed/.test(l)).length, 0, lines.join("\n"));
});

it("stops in bounded time when the store stops answering during an election and a close", async () => {
  const { Runtime } = await import("../../src/runtime/runtime.ts");
  const { SqliteDriver } = await import("../../src/store/sqlite/driver.ts");
  /** A store that, once told to, never answers an election nor a close (a lock held elsewhere, a cut connection). */
  class SilentStore extends SqliteDriver {
    silent = false;
    override leaderAttemptElect(params: { name: string; holderId: string; ttlMs: number }): Promise<boolean> {
      return this.silent ? new Promise<boolean>(() => undefined) : super.leaderAttemptElect(params);
    }
    override close(): Promise<void> {
      return this.silent ? new Promise<void>(() => undefined) : super.close();
    }
  }
  const warnings: string[] = [];
  const at = (): void => undefined;
  const logger: NonNullable<Exclude<RuntimeConfig["logger"], false>> = {
    debug: at,
    info: at,
    warn: (o: object | string, m?: string) => void warnings.push(typeof o === "string" ? o : (m ?? "")),
    error: at,
    child: () => logger,
  };
  const driver = new SilentStore({ path: tempDb(dir) });
  const runtime = new Runtime({ db: driver, logger, isolation: "none" }, { stopWaitMs: 50 });
  await runtime.start();
  await runtime.elector?.runOnce(); // the first election, begun by start, has ended
  driver.silent = true;
  void runtime.elector?.runOnce();
  const began = Date.now();
  await runtime.stop({ graceMs: 0 });
  assert.ok(Date.now() - began < 2_000, `stop took ${Date.now() - began} ms`);
  assert.equal((runtime as unknown as { state: string }).state, "stopped");
  assert.equal(warnings.filter((w) => /gave up waiting for the maintenance services/.test(w)).length, 1, warnings.join("\n"));
  assert.equal(warnings.filter((w) => /gave up waiting for the store to close/.test(w)).length, 1, warnings.join("\n"));
  driver.silent = false;
  await driver.close();
});
