/**
 * Chains: at low concurrency, held attempts of a tiny isolated class run one after another on
 * one thread, in one slot of the worker's, each starting as the one before it ends, without a
 * round trip to the worker (ThreadPool.runChain). Concurrency holds (never two at a time at
 * concurrency 1), each attempt runs once and is reported started when it starts, its timeout
 * counts from then, and one canceled while it waits never runs. Those still waiting when their
 * hold ends, or when the worker stops, are handed back without running.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createRuntime, Task, type Runtime, type TaskHandle } from "../../src/index.ts";
import type { IsolatedRun, ThreadPool } from "../../src/worker/isolation/pool.ts";
import { MostlyShortTask, SpanTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);

interface Chaining {
  readonly runtime: Runtime;
  readonly db: string;
  /** The task ids of every chain the pool ran (white box: the pool's runChain, called through). */
  readonly chains: string[][];
  /** taskStarted and taskReleased events, by task id. */
  readonly started: Map<string, number>;
  readonly released: Set<string>;
}

/** A runtime at concurrency 1 (unless told) whose SpanTask has proven tiny (runs that barely run). */
async function chaining(worker: { leaseMs?: number; concurrency?: number } = {}): Promise<Chaining> {
  const db = tempDb(tempDir());
  const runtime = createRuntime({ db, logger: false, tasks: [FIXTURES], worker: { concurrency: 1, ...worker }, isolation: { mode: "thread" } });
  const pool = (runtime as unknown as { pool: ThreadPool }).pool;
  const chains: string[][] = [];
  const runChain = pool.runChain.bind(pool);
  pool.runChain = (rs: readonly IsolatedRun[]) => {
    const placed = runChain(rs);
    if (placed) chains.push(rs.map((r) => r.run.id));
    return placed;
  };
  const started = new Map<string, number>();
  const released = new Set<string>();
  runtime.on("taskStarted", (e) => started.set(e.taskId, (started.get(e.taskId) ?? 0) + 1));
  runtime.on("taskReleased", (e) => released.add(e.taskId));
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  // Proven tiny: an average under TINY_RUN_MS over its recent runs. On a loaded machine one slow
  // run (a collection in the thread, say) can lift the average over it, so it is warmed until it is.
  for (let batch = 1; !pool.chainable(SpanTask.name, null); batch++) {
    assert.ok(batch <= 20, `SpanTask did not prove tiny in ${batch - 1} batches of 60 runs`);
    const warm = await runtime.run(() => Task.startNewMany(SpanTask, Array.from({ length: 60 }, (_, n) => ({ n }))));
    await allSucceeded(runtime, warm);
  }
  return { runtime, db, chains, started, released };
}

async function allSucceeded(runtime: Runtime, handles: readonly TaskHandle[]): Promise<void> {
  await until(async () => {
    for (const h of handles) if ((await runtime.getTask(h.id)).state !== "succeeded") return false;
    return true;
  }, `${handles.length} tasks to succeed`, 20_000);
}

/**
 * Several tasks stored in one transaction (a worker claims them together): two that barely run,
 * one that waits for `gate`, then `rest` that barely run. The two lead the way into a chain: a
 * shared thread that ended its last attempts over a second ago takes no chain (the pool's
 * sharedRoom), and on a loaded machine that second can pass between the warm-up and the claim. The
 * first then runs alone, and the thread it ran on takes the rest as a chain as it ends.
 */
async function behindGate(runtime: Runtime, gate: string, rest: number, options: { timeoutMs?: number } = {}): Promise<[TaskHandle, TaskHandle[]]> {
  return runtime.transaction(async () => {
    await Task.startNewMany(SpanTask, [{ n: 998 }, { n: 999 }]);
    const slow = await Task.startNew(SpanTask, { n: 1_000, gate });
    const quick = await Task.startNewMany(SpanTask, Array.from({ length: rest }, (_, i) => ({ n: 1_001 + i })), { maxAttempts: 1, ...options });
    return [slow, quick] as [TaskHandle, TaskHandle[]];
  });
}

describe("chained isolated attempts", () => {
  it("run one at a time at concurrency 1, each once, each reported started once", async () => {
    const { runtime, chains, started } = await chaining();
    // Each yields to its thread's event loop between its start and its end: two at once would overlap.
    const handles = await runtime.run(() => Task.startNewMany(SpanTask, Array.from({ length: 300 }, (_, n) => ({ n, yield: true }))));
    await allSucceeded(runtime, handles);
    const chained = new Set(chains.flat());
    assert.ok(handles.filter((h) => chained.has(h.id)).length > 100, `chains: ${chains.map((c) => c.length).join(", ")}`);
    const spans = await Promise.all(handles.map(async (h) => ({ id: h.id, ...((await h.result()) as { start: number; end: number }) })));
    spans.sort((a, b) => a.start - b.start);
    for (let i = 1; i < spans.length; i++) {
      assert.ok(spans[i]!.start >= spans[i - 1]!.end, `task ${spans[i]!.id} started before task ${spans[i - 1]!.id} ended`);
    }
    for (const h of handles) assert.equal(started.get(h.id), 1, `one taskStarted for ${h.id}`);
  });

  it("count a chained attempt's timeout from its own start", async () => {
    const { runtime, chains } = await chaining();
    const gate = join(tempDir(), "gate");
    // Five with a timeout of 200 ms wait behind one that waits for the test.
    const [slow, quick] = await behindGate(runtime, gate, 5, { timeoutMs: 200 });
    await until(() => chains.some((chain) => chain.includes(slow.id)), "the slow one's chain");
    await new Promise((resolve) => setTimeout(resolve, 400));
    writeFileSync(gate, "");
    await allSucceeded(runtime, [slow, ...quick]);
    assert.ok(
      chains.some((chain) => chain.includes(slow.id) && quick.every((h) => chain.includes(h.id))),
      `the five waited in the slow one's chain: ${JSON.stringify(chains.slice(-3))}`,
    );
  });

  it("never run an attempt canceled while it waits in its chain, nor report it started; the rest runs", async () => {
    const { runtime, chains, started } = await chaining();
    const gate = join(tempDir(), "gate");
    const [slow, rest] = await behindGate(runtime, gate, 3);
    await until(() => chains.some((chain) => chain.includes(slow.id)), "the slow one's chain");
    assert.ok(chains.some((chain) => chain.includes(slow.id) && chain.includes(rest[1]!.id)), "the second waits in the slow one's chain");
    assert.equal(await runtime.cancelTask(rest[1]!.id), true);
    writeFileSync(gate, "");
    await allSucceeded(runtime, [slow, rest[0]!, rest[2]!]);
    assert.equal((await runtime.getTask(rest[1]!.id)).state, "canceled");
    assert.equal(started.get(rest[1]!.id), undefined, "no taskStarted for the canceled one");
  });

  it("hand back the attempts still waiting when their hold ends; they run later, once", async () => {
    // A lease of 3 s: a task is held ahead for a second at most.
    const { runtime, chains, started, released } = await chaining({ leaseMs: 3_000 });
    const gate = join(tempDir(), "gate");
    const [slow, rest] = await behindGate(runtime, gate, 4);
    await until(() => chains.some((chain) => chain.includes(slow.id)), "the slow one's chain");
    await until(() => rest.every((h) => released.has(h.id)), "the waiting ones to be handed back", 5_000);
    for (const h of rest) assert.equal(started.get(h.id), undefined, `${h.id} did not start before it was handed back`);
    writeFileSync(gate, "");
    await allSucceeded(runtime, [slow, ...rest]);
    for (const h of [slow, ...rest]) {
      assert.equal(started.get(h.id), 1, `${h.id} started once`);
      assert.equal((await runtime.getTask(h.id)).attempt, 1, "being handed back spent no attempt");
    }
  });

  it("do not form while free slots could run the held tasks beside each other", async () => {
    const { runtime, chains, started } = await chaining({ concurrency: 4 });
    const gate = join(tempDir(), "gate");
    // Three that wait for the test, at concurrency 4: each has a slot of its own.
    const held = await runtime.run(() => Task.startNewMany(SpanTask, Array.from({ length: 3 }, (_, n) => ({ n, gate }))));
    await until(() => held.every((h) => started.get(h.id) === 1), "all three to start at once");
    assert.ok(!chains.some((chain) => held.some((h) => chain.includes(h.id))), `none chained: ${JSON.stringify(chains.slice(-2))}`);
    writeFileSync(gate, "");
    await allSucceeded(runtime, held);
  });

  it("hand back the attempts still waiting when the worker stops, even if their turn comes in the grace", async () => {
    const { runtime, db, chains, started } = await chaining();
    const gate = join(tempDir(), "gate");
    const [slow, rest] = await behindGate(runtime, gate, 4);
    await until(() => chains.some((chain) => chain.includes(slow.id)) && started.get(slow.id) === 1, "the slow one to start in its chain");
    // The slow one ends within the stop's grace: the ones behind it must not start then.
    const stopping = runtime.stop({ graceMs: 5_000 });
    writeFileSync(gate, "");
    await stopping;
    for (const h of rest) assert.equal(started.get(h.id), undefined, `${h.id} never started`);
    const inspector = createRuntime({ db, logger: false, worker: false, maintenance: false });
    await inspector.start();
    after(() => inspector.stop());
    assert.equal((await inspector.getTask(slow.id)).state, "succeeded", "the running one ended in the grace");
    for (const h of rest) {
      const task = await inspector.getTask(h.id);
      assert.equal(task.state, "queued", `${h.id} is queued again`);
      assert.equal(task.attempt, 0, `${h.id} spent no attempt`);
    }
  });

  it("send the ends of a long turn's attempts as they gather: one that then blocks the thread makes fewer than 256 run again", async () => {
    // Concurrency 4: four chains of about 100 go to one thread in one message, and it runs them
    // all in one turn, the spinner last.
    const { runtime, chains } = await chaining({ concurrency: 4 });
    const file = join(tempDir(), "ledger.txt");
    const warm = await runtime.run(() => Task.startNewMany(MostlyShortTask, Array.from({ length: 60 }, (_, n) => ({ file, n, waitMs: 0, spin: false }))));
    await allSucceeded(runtime, warm);
    const [quick, spinner] = await runtime.transaction(async () => {
      const quick = await Task.startNewMany(MostlyShortTask, Array.from({ length: 400 }, (_, i) => ({ file, n: 1_000 + i, waitMs: 0, spin: false })));
      const spinner = await Task.startNew(MostlyShortTask, { file, n: 9_999, waitMs: 0, spin: true }, { timeoutMs: 3_000, maxAttempts: 1 });
      return [quick, spinner] as [TaskHandle[], TaskHandle];
    });
    await allSucceeded(runtime, quick);
    await until(async () => (await runtime.getTask(spinner.id)).state === "dead", "the spinner to time out", 20_000);
    assert.ok(chains.some((chain) => chain.includes(spinner.id)), "the spinner ran chained");
    const runs = readFileSync(file, "utf8").split("\n").filter((line) => Number(line.split(":")[0]) >= 1_000);
    assert.equal(new Set(runs.map((line) => line.split(":")[0])).size, 400, "each of the 400 ran");
    const again = runs.length - 400;
    assert.ok(again < 256, `${again} of the attempts that ended before the thread blocked ran again`);
  });
});
