import { TaskFailedError, type Runtime, type TaskInfo } from "../../src/index.ts";

/** Waits for a task to end; returns it whatever the outcome. */
export async function ended(runtime: Runtime, id: string): Promise<TaskInfo> {
  try {
    return await runtime.waitForTask(id, { timeoutMs: 20_000 });
  } catch (error) {
    if (error instanceof TaskFailedError) return runtime.getTask(id);
    throw error;
  }
}
