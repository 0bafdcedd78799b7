/**
 * Chains: at low concurrency, held attempts of a tiny isolated class run one after another on
 * one thread, in one slot of the worker's, each starting as the one before it ends, without a
 * round trip to the worker (ThreadPool.runChain). Concurrency holds (never two at a time at
 * concurrency 1), each attempt runs once and is reported started when it starts, its timeout
 * counts from then, and one canceled while it waits never runs.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import type { IsolatedRun, ThreadPool } from "../../src/worker/isolation/pool.ts";
import { SpanTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);

/** A runtime at concurrency 1, with the task ids of every chain its pool runs (white box: the pool's runChain, called through). */
async function chainingRuntime(): Promise<{ runtime: Runtime; chains: string[][] }> {
  const runtime = createRuntime({ db: tempDb(tempDir()), logger: false, tasks: [FIXTURES], worker: { concurrency: 1 }, isolation: { mode: "thread" } });
  const pool = (runtime as unknown as { pool: ThreadPool }).pool;
  const chains: string[][] = [];
  const runChain = pool.runChain.bind(pool);
  pool.runChain = (rs: readonly IsolatedRun[]) => {
    const placed = runChain(rs);
    if (placed) chains.push(rs.map((r) => r.run.id));
    return placed;
  };
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return { runtime, chains };
}

/** Each run's start and end, by n, from a SpanTask file. */
function spans(file: string): Map<number, { start: number[]; end: number[] }> {
  const byN = new Map<number, { start: number[]; end: number[] }>();
  if (!existsSync(file)) return byN;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const [n, what, at] = line.split(":") as [string, "start" | "end", string];
    let span = byN.get(Number(n));
    if (!span) byN.set(Number(n), (span = { start: [], end: [] }));
    span[what].push(Number(at));
  }
  return byN;
}

async function allSucceeded(runtime: Runtime, ids: readonly string[]): Promise<void> {
  await until(async () => {
    for (const id of ids) if ((await runtime.getTask(id)).state !== "succeeded") return false;
    return true;
  }, `${ids.length} tasks to succeed`, 20_000);
}

describe("chained isolated attempts", () => {
  it("run one at a time at concurrency 1, each once, each reported started", async () => {
    const { runtime, chains } = await chainingRuntime();
    const file = join(tempDir(), "spans.txt");
    const starts = new Map<string, number>();
    runtime.on("taskStarted", (e) => starts.set(e.taskId, (starts.get(e.taskId) ?? 0) + 1));
    const handles = await runtime.run(() => Task.startNewMany(SpanTask, Array.from({ length: 400 }, (_, n) => ({ file, n, waitMs: 0 }))));
    await allSucceeded(runtime, handles.map((h) => h.id));
    const chained = chains.flat();
    assert.ok(chains.length > 2 && chained.length > 100, `chains: ${chains.map((c) => c.length).join(", ")}`);
    const byN = spans(file);
    assert.equal(byN.size, 400);
    const ordered = [...byN.entries()].map(([n, s]) => {
      assert.equal(s.start.length, 1, `task ${n} started once`);
      assert.equal(s.end.length, 1, `task ${n} ended once`);
      return { n, start: s.start[0]!, end: s.end[0]! };
    });
    ordered.sort((a, b) => a.start - b.start);
    for (let i = 1; i < ordered.length; i++) {
      assert.ok(ordered[i]!.start >= ordered[i - 1]!.end, `task ${ordered[i]!.n} started before task ${ordered[i - 1]!.n} ended`);
    }
    for (const h of handles) assert.equal(starts.get(h.id), 1, `one taskStarted for ${h.id}`);
  });

  it("count a chained attempt's timeout from its own start", async () => {
    const { runtime, chains } = await chainingRuntime();
    const file = join(tempDir(), "spans.txt");
    const warm = await runtime.run(() => Task.startNewMany(SpanTask, Array.from({ length: 60 }, (_, n) => ({ file, n, waitMs: 0 }))));
    await allSucceeded(runtime, warm.map((h) => h.id));
    // Claimed together: one that takes 400 ms, then five whose timeout is 200 ms.
    const [slow, quick] = await runtime.transaction(async () => [
      await Task.startNew(SpanTask, { file, n: 1000, waitMs: 400 }),
      await Task.startNewMany(SpanTask, Array.from({ length: 5 }, (_, i) => ({ file, n: 1001 + i, waitMs: 0 })), { timeoutMs: 200, maxAttempts: 1 }),
    ] as const);
    await allSucceeded(runtime, [slow.id, ...quick.map((h) => h.id)]);
    assert.ok(
      chains.some((chain) => chain[0] === slow.id && quick.every((h) => chain.includes(h.id))),
      `the five waited behind the slow one in its chain: ${JSON.stringify(chains.slice(-3))}`,
    );
  });

  it("never run an attempt canceled while it waits in its chain; the rest of the chain runs", async () => {
    const { runtime, chains } = await chainingRuntime();
    const file = join(tempDir(), "spans.txt");
    const warm = await runtime.run(() => Task.startNewMany(SpanTask, Array.from({ length: 60 }, (_, n) => ({ file, n, waitMs: 0 }))));
    await allSucceeded(runtime, warm.map((h) => h.id));
    const [slow, rest] = await runtime.transaction(async () => [
      await Task.startNew(SpanTask, { file, n: 2000, waitMs: 500 }),
      await Task.startNewMany(SpanTask, [2001, 2002, 2003].map((n) => ({ file, n, waitMs: 0 }))),
    ] as const);
    await until(() => spans(file).has(2000), "the slow one to start");
    assert.ok(chains.some((chain) => chain[0] === slow.id && chain.includes(rest[1]!.id)), "the second waits in the slow one's chain");
    assert.equal(await runtime.cancelTask(rest[1]!.id), true);
    await allSucceeded(runtime, [slow.id, rest[0]!.id, rest[2]!.id]);
    assert.equal((await runtime.getTask(rest[1]!.id)).state, "canceled");
    assert.equal(spans(file).has(2002), false, "the canceled one never ran");
  });
});
