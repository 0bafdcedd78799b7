import { Activity, ActivityConsts, type IBackgroundTask, type IUserConnectionRequired, type TaskContext, type UserConnection } from "underway";
import type { UsrActivityData } from "./UsrActivityData.ts";

/** How long run waits before it creates the activity (the sample waits 30 seconds). */
function delayMs(): number {
  return Number(process.env.UNDERWAY_EXAMPLE_DELAY_MS ?? 30000);
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Waits, then creates a "To do" activity as the user who started the task. */
export class UsrBackgroundActivityCreator implements IBackgroundTask<UsrActivityData>, IUserConnectionRequired<UserConnection> {
  private userConnection!: UserConnection;

  setUserConnection(userConnection: UserConnection): void {
    this.userConnection = userConnection;
  }

  async run(data: UsrActivityData, context: TaskContext): Promise<void> {
    await delay(delayMs(), context.signal);
    const activity = new Activity(this.userConnection);
    activity.useAdminRights = false;
    // Packages cannot import node:crypto; the global Web Crypto API is available.
    activity.id = globalThis.crypto.randomUUID();
    activity.typeId = data.typeId;
    activity.title = data.title;
    activity.activityCategoryId = ActivityConsts.TaskCategoryId;
    activity.setDefColumnValues();
    await activity.save(false);
  }
}
