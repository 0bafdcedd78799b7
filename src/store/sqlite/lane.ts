/**
 * One connection serves the whole process, and better-sqlite3 is synchronous: a statement runs
 * to completion before anything else does. Only an open asynchronous transaction can interleave
 * with other work; while one is open, every other operation waits its turn here, so nothing
 * lands inside someone else's transaction.
 */
export class Lane {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

  get idle(): boolean {
    return !this.busy && this.waiting.length === 0;
  }

  /** Runs fn alone: at once when the lane is idle, else after those already waiting. */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.busy || this.waiting.length > 0) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.busy = true;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.busy = false;
    }
  }
}
