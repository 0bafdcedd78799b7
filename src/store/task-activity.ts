/** Shapes the task centre's read queries share between the drivers. */
import type { TaskActivityBuckets, TaskActivityParams, TaskCountUpToParams } from "./driver.ts";
import { TASK_STATES, type TaskState } from "../tasks/types.ts";

/** The window of an activity query ending at `nowMs`, checked: at most 1,000 buckets. */
export function activityWindow(params: TaskActivityParams, nowMs: number): { fromMs: number; buckets: number } {
  const { windowMs, bucketMs } = params;
  if (!Number.isInteger(bucketMs) || bucketMs < 1000) throw new RangeError(`bucketMs must be an integer >= 1000, got ${String(bucketMs)}`);
  if (!Number.isInteger(windowMs) || windowMs < bucketMs) throw new RangeError(`windowMs must be an integer >= bucketMs, got ${String(windowMs)}`);
  const buckets = Math.ceil(windowMs / bucketMs);
  if (buckets > 1000) throw new RangeError(`windowMs / bucketMs must be at most 1000 buckets, got ${buckets}`);
  // Buckets align to whole multiples of bucketMs so that successive polls agree on their edges.
  const end = (Math.floor(nowMs / bucketMs) + 1) * bucketMs;
  return { fromMs: end - buckets * bucketMs, buckets };
}

/** Fills the bucket arrays from grouped rows `{ b: bucket index, n: count }`. */
export function activityBuckets(
  window: { fromMs: number; buckets: number },
  bucketMs: number,
  succeeded: readonly { b: number | string; n: number | string }[],
  failed: readonly { b: number | string; n: number | string }[],
): TaskActivityBuckets {
  const fill = (rows: readonly { b: number | string; n: number | string }[]): number[] => {
    const out = new Array<number>(window.buckets).fill(0);
    for (const r of rows) {
      const i = Number(r.b);
      if (i >= 0 && i < window.buckets) out[i] = (out[i] ?? 0) + Number(r.n);
    }
    return out;
  };
  return { fromMs: window.fromMs, bucketMs, succeeded: fill(succeeded), failed: fill(failed) };
}

export function checkCountCap(params: TaskCountUpToParams): number {
  if (!Number.isInteger(params.cap) || params.cap < 1 || params.cap > 1_000_000) {
    throw new RangeError(`cap must be an integer between 1 and 1,000,000, got ${String(params.cap)}`);
  }
  return params.cap;
}

export function zeroCounts(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
}
