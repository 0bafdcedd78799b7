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
