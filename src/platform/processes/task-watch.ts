import { PeriodicDuty } from "../../maintenance/periodic.ts";
import type { Runtime } from "../../runtime/runtime.ts";
import type { StorageDriver } from "../../store/driver.ts";
import type { ProcessEngine } from "./engine.ts";

/** How often the maintenance leader looks for instances whose task ended unseen, ms. */
export const PROCESS_TASK_WATCH_MS = 5_000;

/**
 * Ends the process instances whose own task was canceled, deleted or ended dead where no
 * platform saw it (ProcessEngine.endInstancesOfEndedTasks). The runtime's task events are local:
 * a cancel from another node, the CLI or the task centre, of a task that is queued, or that ran
 * in a thread that was stopped, reaches no listener. This pass, on the maintenance leader, makes
 * good every such case whoever caused it, within a few seconds. It reads the running instances
 * only when the tasks changed since its last pass (the store's change mark, one indexed read).
 */
export class ProcessTaskWatch extends PeriodicDuty<number> {
  private lastMark: string | null = null;

  constructor(
    private readonly engine: ProcessEngine,
    private readonly store: StorageDriver,
    runtime: Runtime,
    intervalMs = PROCESS_TASK_WATCH_MS,
  ) {
    super({
      logger: runtime.logger,
      intervalMs,
      isLeader: () => runtime.elector?.isLeader ?? false,
      failure: "ending process instances whose task ended unseen failed; will retry",
      name: "process task watch",
    });
  }

  async runOnce(): Promise<number> {
    const mark = await this.store.taskChangeMark();
    if (mark === this.lastMark) return 0;
    const ended = await this.engine.endInstancesOfEndedTasks({ between: () => this.nextBatch() });
    // Kept only once the pass went through: a pass that failed is made again at the next tick.
    this.lastMark = mark;
    return ended;
  }
}
