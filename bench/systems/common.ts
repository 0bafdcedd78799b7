/** What the peers' adapters share: counting handler runs, and timing completions they do not report. */
import { monotonicNow, sleep } from "../lib/clock.ts";
import type { RunRecord, RunSink } from "../lib/tasks.ts";

/** Wraps a scenario's sink: counts the runs and wakes whoever waits for a number of them. */
export class RunCounter {
  private count = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly downstream: RunSink) {}

  readonly sink: RunSink = (run: RunRecord): void => {
    this.count++;
    this.downstream(run);
    this.waiters.forEach((w) => w());
  };

  get runs(): number {
    return this.count;
  }

  /** Resolves true once `n` handlers have run, false at `deadline` (monotonic ms). */
  until(n: number, deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.count >= n) finish(true);
      };
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - monotonicNow()));
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** How often a system's store is asked whether the completions are stored. */
export const STORE_POLL_MS = 10;

/**
 * For systems that do not report each stored completion (graphile-worker and pg-boss complete
 * jobs after the handler returns, without telling when it is written): waits until every
 * handler has run, then asks the store every STORE_POLL_MS until nothing is pending. Returns the
 * monotonic time of the first answer that said so, or null at the deadline.
 */
export async function pollUntilStored(
  counter: RunCounter,
  expected: number,
  pending: () => Promise<number>,
  deadline: number,
): Promise<number | null> {
  if (!(await counter.until(expected, deadline))) return null;
  while (monotonicNow() < deadline) {
    if ((await pending()) === 0) return monotonicNow();
    await sleep(STORE_POLL_MS);
  }
  return null;
}
