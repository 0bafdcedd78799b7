import { runInScope, type AmbientScope } from "../tasks/ambient.ts";
import { TaskTimeoutError } from "../tasks/errors/task-timeout-error.ts";
import type { AnyTaskClass } from "../tasks/registry.ts";
import type { TaskContext, UserConnectionLike } from "../tasks/types.ts";

export interface Execution {
  readonly taskClass: AnyTaskClass;
  readonly parameters: unknown;
  readonly context: TaskContext;
  readonly controller: AbortController;
  readonly timeoutMs: number;
  readonly userConnection: UserConnectionLike | null;
  readonly scope: AmbientScope;
}

/**
 * Runs a task in this process: creates the instance with its parameterless constructor, passes
 * the user connection (if any) to setUserConnection, then awaits run. Resolves with what run
 * returned (its result). Rejects with what run threw (any value), with TaskTimeoutError when the
 * timeout passes first, or with the abort reason when the signal aborts.
 */
export function executeInProcess(execution: Execution): Promise<unknown> {
  const { controller, timeoutMs } = execution;
  return new Promise<unknown>((resolve, reject) => {
    // Aborted while the run was being set up (shutdown, lost lease): it must not start.
    if (controller.signal.aborted) {
      reject(controller.signal.reason);
      return;
    }
    let settled = false;
    const finish = (failed: boolean, outcome?: unknown): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      controller.signal.removeEventListener("abort", onAbort);
      if (failed) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = (): void => finish(true, controller.signal.reason);
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            const error = new TaskTimeoutError(timeoutMs);
            controller.abort(error);
            finish(true, error);
          }, timeoutMs)
        : null;
    controller.signal.addEventListener("abort", onAbort);
    runInScope(execution.scope, () => {
      try {
        const instance = new execution.taskClass();
        if (execution.userConnection) {
          (instance as unknown as { setUserConnection(c: UserConnectionLike): void }).setUserConnection(execution.userConnection);
        }
        const result = (instance as { run(p: unknown, c: TaskContext): unknown }).run(execution.parameters, execution.context);
        if (result && typeof (result as Promise<unknown>).then === "function") {
          (result as Promise<unknown>).then(
            (value) => finish(false, value),
            (error: unknown) => finish(true, error),
          );
        } else {
          finish(false, result);
        }
      } catch (error) {
        finish(true, error);
      }
    });
  });
}
