/** Called once when the attempt it listens to is aborted. */
export interface AbortListener {
  handleEvent(): void;
}

/**
 * An attempt's abort: what the worker, its executor and its thread pool need of an
 * AbortController (abort with a reason, ask whether and why, be told once), without the
 * AbortSignal, an EventTarget, until the task's own code asks for one through `signal`. Most
 * attempts never do, and every attempt has one of these.
 */
export class RunAbort {
  private controller: AbortController | null = null;
  private listeners: AbortListener[] | null = null;
  private abortedWith: { readonly reason: unknown } | null = null;

  get aborted(): boolean {
    return this.abortedWith !== null;
  }

  /** Why it was aborted; undefined while it is not. */
  get reason(): unknown {
    return this.abortedWith?.reason;
  }

  /** The AbortSignal of the attempt, for the task's code (TaskContext.signal): made on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  /** Aborts the attempt (the first reason wins): the signal's listeners, then this object's, each once. */
  abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const listener of listeners) listener.handleEvent();
  }

  /** Tells `listener` of the abort, once. Not called when it was aborted already: check `aborted` first. */
  listen(listener: AbortListener): void {
    (this.listeners ??= []).push(listener);
  }

  unlisten(listener: AbortListener): void {
    const at = this.listeners?.indexOf(listener) ?? -1;
    if (at >= 0) this.listeners!.splice(at, 1);
  }
}
