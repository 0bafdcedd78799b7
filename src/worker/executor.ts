import { runInScope, type AmbientScope } from "../tasks/ambient.ts";
import { TaskTimeoutError } from "../tasks/errors/task-timeout-error.ts";
import type { AnyTaskClass } from "../tasks/registry.ts";
import type { TaskContext, UserConnectionLike } from "../tasks/types.ts";
import type { AbortListener, RunAbort } from "./run-abort.ts";

export interface Execution {
  readonly taskClass: AnyTaskClass;
  readonly parameters: unknown;
  readonly context: TaskContext;
  /** The attempt's abort: it stops waiting for run (the task's code sees it through context.signal). */
  readonly abort: RunAbort;
  readonly timeoutMs: number;
  readonly userConnection: UserConnectionLike | null;
  readonly scope: AmbientScope;
  /**
   * After an abort, settle only once run's own promise has (with the abort's reason), rather
   * than at once. A task thread runs its attempts so: an attempt ends when its code does, and
   * the pool stops the thread when that takes longer than the abort's grace. In the worker's
   * process an aborted attempt is let go at once (its code, if it ignores the signal, goes on).
   */
  readonly awaitCodeAfterAbort?: boolean;
}

/**
 * Runs a task in this process: creates the instance with its parameterless constructor, passes
 * the user connection (if any) to setUserConnection, then awaits run. Resolves with what run
 * returned (its result). Rejects with what run threw (any value), with TaskTimeoutError when the
 * timeout passes first, or with the abort's reason when the attempt is aborted.
 */
export function executeInProcess(execution: Execution): Promise<unknown> {
  const { abort } = execution;
  return new Promise<unknown>((resolve, reject) => {
    // Aborted while the run was being set up (shutdown, lost lease): it must not start.
    if (abort.aborted) {
      reject(abort.reason);
      return;
    }
    const attempt = new InProcessRun(execution, resolve, reject);
    abort.listen(attempt);
    runInScope(execution.scope, () => {
      try {
        const instance = new execution.taskClass();
        if (execution.userConnection) {
          (instance as unknown as { setUserConnection(c: UserConnectionLike): void }).setUserConnection(execution.userConnection);
        }
        const result = (instance as { run(p: unknown, c: TaskContext): unknown }).run(execution.parameters, execution.context);
        if (result && typeof (result as Promise<unknown>).then === "function") {
          (result as Promise<unknown>).then(
            (value) => attempt.finish(false, value),
            (error: unknown) => attempt.finish(true, error),
          );
        } else {
          attempt.finish(false, result);
        }
      } catch (error) {
        attempt.finish(true, error);
      }
    });
  });
}

/**
 * One attempt under way in this process, until it settles: a class rather than closures, since
 * one is made for every attempt (it is its abort's listener itself, through handleEvent).
 */
class InProcessRun {
  private settled = false;
  private readonly timer: NodeJS.Timeout | null;

  constructor(
    private readonly execution: Execution,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    const { abort, timeoutMs } = execution;
    this.timer =
      timeoutMs > 0
        ? setTimeout(() => {
            const error = new TaskTimeoutError(timeoutMs);
            abort.abort(error);
            this.finish(true, error);
          }, timeoutMs)
        : null;
  }

  /** The attempt was aborted. */
  handleEvent(): void {
    if (this.execution.awaitCodeAfterAbort) return; // finish() comes when run settles
    this.finish(true, this.execution.abort.reason);
  }

  finish(failed: boolean, outcome?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.execution.abort.unlisten(this);
    // After an abort, the attempt ends with the abort's reason whatever its code did then.
    if (this.execution.abort.aborted) this.reject(this.execution.abort.reason);
    else if (failed) this.reject(outcome);
    else this.resolve(outcome);
  }
}

/**
 * Waits for a step an attempt takes before its code runs (its class, its user connection) within
 * the attempt's limits: rejects with the abort's reason once the attempt is aborted (a cancel, a
 * lost lease, a shutdown), and aborts it with TaskTimeoutError when the step alone outlasts the
 * attempt's timeout. A step that never settles holds its slot no longer than the run would.
 */
export function withinAttempt<T>(step: Promise<T>, abort: RunAbort, timeoutMs: number): Promise<T> {
  if (abort.aborted) return Promise.reject(abort.reason as Error);
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | null = null;
    const listener: AbortListener = {
      handleEvent() {
        if (timer) clearTimeout(timer);
        reject(abort.reason as Error);
      },
    };
    abort.listen(listener);
    if (timeoutMs > 0) timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
    step.then(
      (value) => {
        if (timer) clearTimeout(timer);
        abort.unlisten(listener);
        resolve(value);
      },
      (error: unknown) => {
        if (timer) clearTimeout(timer);
        abort.unlisten(listener);
        reject(error as Error);
      },
    );
  });
}
