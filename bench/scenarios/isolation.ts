import { monotonicNow, sleep } from "../lib/clock.ts";
import type { ChildSpec, IsolationMode, RoundResult } from "../lib/protocol.ts";
import { openRuntime, underwayDb } from "../lib/runtime.ts";
import { BenchProbe, BenchRunaway, collectRuns, type RunRecord } from "../lib/tasks.ts";
import { Task } from "../lib/underway.ts";
import { openSystem } from "../systems/index.ts";
import { startUnderwayWorker } from "../systems/underway.ts";
import { loadTasks, measureDrain, type DrainOutcome } from "./drain.ts";

const n = (count: number): string => count.toLocaleString("en-US");

/**
 * Whether the runtime runs a task in a worker thread when created with `isolation: { mode:
 * "thread" }`: starts one BenchProbe and sees where it ran. Null when it did; else why not (the
 * option is unknown to this runtime, or the probe failed).
 */
async function isolationUnavailable(db: string): Promise<string | null> {
  let where: RunRecord | null = null;
  let failure: string | null = null;
  const stopCollecting = collectRuns((run) => {
    if (run.kind === "probe") where = run;
  });
  try {
    const runtime = await openRuntime(db, {
      worker: { concurrency: 1 },
      maintenance: false,
      isolation: "thread",
      beforeStart: (r) => {
        for (const event of ["taskFailed", "taskDead"] as const) {
          r.on(event, (e) => (failure ??= `${e.name} ${event === "taskDead" ? "died" : "failed"}: ${e.error.message}`));
        }
      },
    });
    try {
      await runtime.run(() => Task.startNew(BenchProbe, { n: 0 }));
      const until = monotonicNow() + 20_000;
      while (where === null && failure === null && monotonicNow() < until) await sleep(20);
    } finally {
      await runtime.stop({ graceMs: 1_000 });
    }
  } catch (error) {
    return `isolation not available (createRuntime with isolation: ${(error as Error).message})`;
  } finally {
    stopCollecting();
  }
  const ran = where as RunRecord | null;
  if (ran?.thread) return null;
  if (ran) return "isolation not available (with isolation: { mode: \"thread\" } the task ran on the main thread)";
  return `isolation not available (the probe task ${failure ?? "did not run within 20 s"})`;
}

/**
 * Scenario 6, underway only: the drain at concurrency c (10) with `isolation: { mode }` given to
 * createRuntime, "none" or "thread"; with `runaways`, that many BenchRunaway tasks (a synchronous
 * endless loop) are claimed first and keep their slots for the whole round, so the drain runs on
 * c - runaways slots while they spin. Reports n/a when this runtime has no thread isolation.
 */
export async function isolation(spec: ChildSpec): Promise<RoundResult> {
  const mode: IsolationMode = spec.isolation ?? "thread";
  const runaways = spec.runaways ?? 0;
  const concurrency = spec.concurrency ?? 10;
  const db = underwayDb(spec);
  const system = await openSystem(spec);
  try {
    await system.setup();
    const unavailable = await isolationUnavailable(db);
    if (unavailable) return { measurements: [], checks: [], unavailable, details: { mode, runaways } };

    await loadTasks(system, spec.count, spec.batch ?? 1_000);
    const runawayIds: string[] = [];
    const inspector = await openRuntime(db, { worker: false, maintenance: false });
    try {
      for (let i = 0; i < runaways; i++) runawayIds.push((await inspector.run(() => Task.startNew(BenchRunaway, { n: -1 - i }))).id);
      // Timed from the worker's start, as scenario 3; the runaways (priority 10) are in its first claim.
      const outcome = await measureDrain(
        spec,
        system,
        (onRun) => startUnderwayWorker(db, spec, { concurrency, onRun }),
        async () => (await Promise.all(runawayIds.map((id) => inspector.getTask(id)))).filter((t) => !ENDED.has(t.state)).length,
      );
      return summarize(outcome, mode, runaways, concurrency);
    } finally {
      await inspector.stop();
    }
  } finally {
    await system.close();
  }
}

const ENDED = new Set(["succeeded", "dead", "canceled"]);

/**
 * The rate of handler starts between the 10th and the 90th percentile of starts: the drain once
 * under way, without the worker's start (and, with runaways, the threads that boot to replace
 * the ones they hold) and without the tail. Null with too few runs to tell.
 */
function steadyRate(starts: number[]): RoundResult["measurements"][number] | null {
  if (starts.length < 100) return null;
  const sorted = [...starts].sort((a, b) => a - b);
  const from = Math.floor(sorted.length * 0.1);
  const to = Math.floor(sorted.length * 0.9);
  const ms = sorted[to]! - sorted[from]!;
  if (!(ms > 0)) return null;
  return { key: "steady", label: "steady throughput (10th to 90th percentile of starts)", unit: "tasks/s", value: Math.round(((to - from) * 1000) / ms) };
}

function summarize(outcome: DrainOutcome, mode: IsolationMode, runaways: number, concurrency: number): RoundResult {
  const spun = outcome.runs.filter((r) => r.kind === "runaway");
  const wrongPlace = outcome.runs.filter((r) => r.kind === "noop" && r.thread !== (mode === "thread")).length;
  const warnings = [...outcome.warnings];
  if (wrongPlace > 0) warnings.push(`${n(wrongPlace)} tasks did not run where isolation: { mode: "${mode}" } says`);
  if (spun.length < runaways) warnings.push(`only ${spun.length} of ${runaways} runaway tasks started`);
  const checks = [...outcome.checks];
  if (runaways > 0) checks.push(`${spun.length} runaway tasks started (in threads) before or during the drain`);
  checks.push(`tasks ran ${mode === "thread" ? "in worker threads" : "on the main thread"}`);
  const steady = steadyRate(outcome.runs.filter((r) => r.kind === "noop").map((r) => r.startedAt));
  return {
  measurements: [outcome.measurement, ...(steady === null ? [] : [steady])],
  checks,
  warnings,
  details: { ...outcome.details, concurrency, mode, runaways, runawaysStarted: spun.length },
  };
}
