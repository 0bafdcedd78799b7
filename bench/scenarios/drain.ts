import { monotonicNow, sleep } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { perSecond } from "../lib/stats.ts";
import type { RunRecord } from "../lib/tasks.ts";
import { openSystem } from "../systems/index.ts";
import type { QueueSystem, RunningWorker } from "../systems/types.ts";

const n = (count: number): string => count.toLocaleString("en-US");

/** Loads `count` no-op tasks through the system's bulk API, `batch` per call, and checks they are stored. */
export async function loadTasks(system: QueueSystem, count: number, batch: number): Promise<void> {
  const producer = await system.producer();
  try {
    const payloads = Array.from({ length: count }, (_, i) => ({ n: i }));
    for (let i = 0; i < count; i += batch) await producer.addMany(payloads.slice(i, i + batch));
  } finally {
    await producer.close();
  }
  const stored = await system.pending();
  if (stored !== count) throw new Error(`after loading ${n(count)} tasks, the store holds ${n(stored)} pending`);
}

export interface DrainOutcome {
  readonly measurement: RoundResult["measurements"][number];
  readonly checks: string[];
  readonly warnings: string[];
  readonly details: Record<string, number | boolean>;
  /** The handler runs, for scenario-specific checks (isolation: where they ran). */
  readonly runs: readonly RunRecord[];
}

/**
 * Scenario 3's measurement, on tasks already stored: from just before the worker starts to the
 * moment the system has stored the last completion (or the time limit). Then the exactly-once
 * check: every handler run is recorded with its task's id; after the worker stopped, each task
 * must have run once or still be pending, none twice, none lost.
 */
export async function measureDrain(
  spec: ChildSpec,
  system: QueueSystem,
  startWorker: (onRun: (run: RunRecord) => void) => Promise<RunningWorker>,
  /** Other tasks of the round still pending (isolation's runaways), not counted among the drain's. */
  otherPending: () => Promise<number> = () => Promise.resolve(0),
): Promise<DrainOutcome> {
  const count = spec.count;
  const budgetMs = spec.budgetMs ?? spec.timeLimitMs - 10_000;
  const runs: RunRecord[] = [];
  const noops = (): number => runs.filter((r) => r.kind === "noop").length;

  const started = monotonicNow();
  const deadline = started + budgetMs;
  const worker = await startWorker((run) => runs.push(run));
  let doneAt: number | null;
  let handledByDeadline: number;
  try {
    doneAt = await worker.completed(count, noops, deadline);
    handledByDeadline = doneAt === null ? noops() : count;
  } finally {
    await worker.stop();
  }
  const complete = doneAt !== null;
  const elapsedMs = complete ? (doneAt as number) - started : budgetMs;

  // Completions written after the handler returns, and runs relayed from threads, may still be on
  // their way: wait (up to 3 s) until every task is either recorded as run or pending, not both.
  const settleUntil = monotonicNow() + 3_000;
  const pendingOfDrain = async (): Promise<number> => (await system.pending()) - (await otherPending());
  let pending = await pendingOfDrain();
  for (;;) {
    const distinct = new Set(runs.filter((r) => r.kind === "noop").map((r) => r.id)).size;
    if (distinct + pending === count || monotonicNow() > settleUntil) break;
    await sleep(50);
    pending = await pendingOfDrain();
  }
  const noopRuns = runs.filter((r) => r.kind === "noop");
  const distinct = new Set(noopRuns.map((r) => r.id)).size;
  const twice = noopRuns.length - distinct;
  const missing = count - distinct - pending;
  const checks = [
    complete
      ? `${n(distinct)} of ${n(count)} ran, ${n(twice)} twice, ${n(Math.max(0, missing))} lost`
      : `stopped at the time limit (${budgetMs / 1000} s): ${n(handledByDeadline)} of ${n(count)} ran by then; after the stop ${n(distinct)} had run, ${n(pending)} pending, ${n(twice)} twice, ${n(Math.max(0, missing))} lost`,
  ];
  const warnings: string[] = [];
  if (twice > 0) warnings.push(`${n(twice)} handler runs were of tasks that had already run (ran twice)`);
  if (missing > 0) warnings.push(`${n(missing)} tasks neither ran nor are pending (lost)`);
  if (missing < 0) warnings.push(`${n(-missing)} tasks ran but were still pending after the worker stopped (they would run again)`);
  return {
    measurement: {
      key: "rate",
      label: "throughput",
      unit: "tasks/s",
      value: perSecond(handledByDeadline, elapsedMs),
      ...(complete ? {} : { partial: `${n(handledByDeadline)} of ${n(count)} in ${budgetMs / 1000} s` }),
    },
    checks,
    warnings,
    details: { tasks: count, handled: handledByDeadline, elapsedMs, complete, handlerRuns: noopRuns.length, distinct, twice, pendingAfter: pending, lost: Math.max(0, missing) },
    runs,
  };
}

/** Scenario 3: `count` queued no-op tasks, one worker process at the given concurrency. */
export async function drain(spec: ChildSpec): Promise<RoundResult> {
  const concurrency = spec.concurrency ?? 10;
  const system = await openSystem(spec);
  try {
    await system.setup();
    await loadTasks(system, spec.count, spec.batch ?? 1_000);
    const outcome = await measureDrain(spec, system, (onRun) => system.startWorker({ concurrency, onRun }));
    return {
      measurements: [outcome.measurement],
      checks: outcome.checks,
      warnings: outcome.warnings,
      details: { ...outcome.details, concurrency },
    };
  } finally {
    await system.close();
  }
}
