import type { IBackgroundTask, TaskContext } from "./underway.ts";
import { sharedNow } from "./clock.ts";

/** Ids of the BenchNoop runs in this process, in run order: duplicates mean a task ran twice. */
export const noopRuns: string[] = [];

/** A task that does nothing but note that it ran. */
export class BenchNoop implements IBackgroundTask<{ n: number }> {
  run(_parameters: { n: number }, context: TaskContext): void {
    noopRuns.push(context.taskId);
  }
}

/** Pickup latencies seen in this process, ms: handler start minus the enqueue time passed in. */
export const pickupLatencies: number[] = [];

/** A task whose parameter is the shared-clock time taken just before its Task.startNew call. */
export class BenchLatency implements IBackgroundTask<{ enqueuedAt: number }> {
  run(parameters: { enqueuedAt: number }): void {
    pickupLatencies.push(sharedNow() - parameters.enqueuedAt);
  }
}
