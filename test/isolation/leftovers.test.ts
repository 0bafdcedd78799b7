/**
 * Work an attempt leaves behind on its thread (a timer that spins once the attempt has ended),
 * and the pool's warm threads after a thread is stopped: an idle thread that stops answering is
 * given no task and is stopped, and the pool boots threads back up to minThreads.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, Task, type Runtime, type RuntimeConfig } from "../../src/index.ts";
import { LeavesSpinBehindTask, LedgerTask, SpinTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";
import { ended } from "./helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const dir = tempDir();

interface Line {
  readonly bindings: Record<string, unknown>;
  readonly message: string;
}

function capture(lines: Line[], bindings: Record<string, unknown> = {}): NonNullable<Exclude<RuntimeConfig["logger"], false>> {
  const at = (o: object | string, m?: string): void => {
    if (typeof o === "string") lines.push({ bindings, message: o });
    else lines.push({ bindings: { ...bindings, ...o }, message: m ?? "" });
  };
  return { debug: at, info: at, warn: at, error: at, child: (more) => capture(lines, { ...bindings, ...more }) as never };
}

/** White box: the worker's pool, and the ids of its threads with when each was last pinged unanswered. */
interface PoolInside {
  readonly size: number;
  readonly all: Set<{ readonly thread: { readonly threadId: number }; readonly pingSentAt: number; readonly gone: Error | null }>;
  readonly idle: readonly { readonly thread: { readonly threadId: number }; readonly pingSentAt: number }[];
}

async function isolated(lines: Line[] = []): Promise<{ runtime: Runtime; pool: PoolInside }> {
  const runtime = createRuntime({
    db: tempDb(dir),
    logger: capture(lines),
    tasks: [FIXTURES],
    worker: { concurrency: 2 },
    isolation: { mode: "thread", minThreads: 2 },
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return { runtime, pool: (runtime as unknown as { pool: PoolInside }).pool };
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
}

/** The thread the task's leftover timer spins in, once it spins. */
async function spinningThread(file: string): Promise<number> {
  const line = await until(() => lines(file).find((l) => l.startsWith("spinning:")), "the leftover timer to spin");
  return Number(line.slice("spinning:".length));
}

/** Runs a LedgerTask; the thread it ran in. It must succeed on its first attempt, well within its timeout. */
async function ledgerTaskThread(runtime: Runtime, file: string, n: number): Promise<number> {
  const handle = await runtime.run(() => Task.startNew(LedgerTask, { file, n }, { maxAttempts: 1, timeoutMs: 10_000 }));
  const info = await runtime.waitForTask(handle.id, { timeoutMs: 5_000 });
  assert.equal(info.state, "succeeded");
  assert.equal(info.attempt, 1);
  const line = lines(file).find((l) => l.startsWith(`${n}:`));
  assert.ok(line, "the task recorded itself");
  return Number(line.split(":")[2]);
}

it("stops an idle thread that runs synchronously after its attempt ended, names the class that ran last on it, and boots another", async () => {
  const logged: Line[] = [];
  const { runtime, pool } = await isolated(logged);
  const file = join(dir, "idle-spin.txt");
  const leaves = await runtime.run(() => Task.startNew(LeavesSpinBehindTask, { file, afterMs: 20, spinMs: 0 }, { maxAttempts: 1 }));
  assert.equal((await ended(runtime, leaves.id)).state, "succeeded");
  const spinner = await spinningThread(file);

  const warned = await until(() => logged.find((l) => /after its attempts had ended/.test(l.message)), "the spinning idle thread to be stopped");
  assert.equal(warned.bindings.task, "LeavesSpinBehindTask");
  await until(() => pool.size === 2 && ![...pool.all].some((t) => t.thread.threadId === spinner), "the pool to be back to its two threads, without the spinning one");

  const ran = await ledgerTaskThread(runtime, file, 1);
  assert.notEqual(ran, spinner);
});

it("hands no task to an idle thread that has stopped answering", async () => {
  const { runtime, pool } = await isolated();
  const file = join(dir, "no-hand-out.txt");
  const leaves = await runtime.run(() => Task.startNew(LeavesSpinBehindTask, { file, afterMs: 0, spinMs: 0 }, { maxAttempts: 1 }));
  assert.equal((await ended(runtime, leaves.id)).state, "succeeded");
  const spinner = await spinningThread(file);
  // Idle, pinged and silent past the watchdog's ping age, and not stopped yet.
  await until(
    () => pool.idle.some((t) => t.thread.threadId === spinner && t.pingSentAt !== 0 && performance.now() - t.pingSentAt >= 60),
    "the idle spinning thread to leave a ping unanswered",
  );
  const ran = await ledgerTaskThread(runtime, file, 2);
  assert.notEqual(ran, spinner);
});

it("keeps minThreads threads booted after a runaway's thread is stopped", async () => {
  const { runtime, pool } = await isolated();
  assert.equal(pool.size, 2);
  const spin = await runtime.run(() => Task.startNew(SpinTask, null, { maxAttempts: 1, timeoutMs: 300 }));
  const info = await ended(runtime, spin.id);
  assert.equal(info.state, "dead");
  await until(() => pool.size === 2 && [...pool.all].every((t) => t.gone === null), "a thread to replace the stopped one");
  const file = join(dir, "after-runaway.txt");
  await ledgerTaskThread(runtime, file, 3);
});
