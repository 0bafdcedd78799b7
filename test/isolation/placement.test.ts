/**
 * An attempt aborted on its way to its thread: in the same turn as it is placed (the run and its
 * abort travel in one message), or after a thread was handed to it and before it was placed. It
 * never starts, it ends at once with the abort's reason, and the thread stays.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { encodeParameters } from "../../src/codec/index.ts";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import { TaskInterruptedError } from "../../src/tasks/errors/task-interrupted-error.ts";
import type { IsolatedRun, ThreadPool } from "../../src/worker/isolation/pool.ts";
import { RunAbort } from "../../src/worker/run-abort.ts";
import { MostlyShortTask, NapTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();
const ledger = join(dir, "ledger.txt");
let runtime: Runtime;
let pool: ThreadPool;

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function attempt(name: string, parameters: unknown, abort: RunAbort): IsolatedRun {
  return {
    run: { id: "1", name, module: FIXTURES.href, parameters: encodeParameters(parameters), attempt: 1, maxAttempts: 1, initiator: null, withUserConnection: false },
    memoryLimitMb: null,
    abort,
    timeoutMs: 0,
    abortGraceMs: 2_000,
    onProgress: () => undefined,
    logger: quiet,
  };
}

before(async () => {
  runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [FIXTURES], worker: { concurrency: 4 }, isolation: { mode: "thread", minThreads: 2 } });
  await runtime.start();
  // White box: the worker's pool, to place attempts and abort them at chosen moments.
  pool = (runtime as unknown as { pool: ThreadPool }).pool;
  // MostlyShortTask proves short (it shares a thread from now); NapTask is known but not short.
  const warm = await runtime.run(() => Task.startNewMany(MostlyShortTask, Array.from({ length: 10 }, (_, n) => ({ file: ledger, n, waitMs: 0, spin: false }))));
  const nap = await runtime.run(() => Task.startNew(NapTask, { ms: 60 }));
  await until(async () => {
    for (const h of [...warm, nap]) if ((await runtime.getTask(h.id)).state !== "succeeded") return false;
    return true;
  }, "the warm-up tasks to succeed", 10_000);
});
after(() => runtime.stop({ graceMs: 0 }));

function ledgerHas(n: number): boolean {
  return existsSync(ledger) && readFileSync(ledger, "utf8").split("\n").some((line) => line.startsWith(`${n}:`));
}

it("does not start an attempt whose abort travels in the same message as its run", async () => {
  const threads = pool.size;
  const abort = new RunAbort();
  const ended = pool.run(attempt("MostlyShortTask", { file: ledger, n: 500, waitMs: 0, spin: false }, abort));
  const reason = new TaskInterruptedError("aborted as it was placed");
  abort.abort(reason);
  const began = performance.now();
  await assert.rejects(ended, (error) => error === reason);
  assert.ok(performance.now() - began < 1_000, "it ends without waiting for the abort's grace");
  // Its code never ran, and the thread it was placed on still serves.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(ledgerHas(500), false);
  assert.equal(pool.size, threads);
  await pool.run(attempt("MostlyShortTask", { file: ledger, n: 501, waitMs: 0, spin: false }, new RunAbort()));
  assert.equal(ledgerHas(501), true);
  assert.equal(pool.size, threads);
});

it("ends an attempt aborted after a thread was handed to it, before it was placed, without stopping the thread", async () => {
  const threads = pool.size;
  const abort = new RunAbort();
  // NapTask's class is known and not short: an idle thread is handed to it, and it is placed a turn later.
  const ended = pool.run(attempt("NapTask", { ms: 0 }, abort));
  const reason = new TaskInterruptedError("aborted on its way to the thread");
  abort.abort(reason);
  const began = performance.now();
  await assert.rejects(ended, (error) => error === reason);
  assert.ok(performance.now() - began < 1_000, "it ends at once, not after the abort's grace (2 s)");
  assert.equal(pool.size, threads, "the thread it was handed is not stopped");
  await pool.run(attempt("NapTask", { ms: 0 }, new RunAbort()));
  assert.equal(pool.size, threads);
});
