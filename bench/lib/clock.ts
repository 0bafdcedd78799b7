import { performance } from "node:perf_hooks";

/**
 * Milliseconds since the epoch with sub-millisecond resolution, comparable across processes on
 * one machine: every process's timeOrigin is taken from the same system clock.
 */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A monotonic clock for durations within one process, ms. */
export function monotonicNow(): number {
  return performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
