export type TaskState = "queued" | "running" | "succeeded" | "failed" | "dead" | "canceled";
export const TASK_STATES: readonly TaskState[] = ["queued", "running", "succeeded", "failed", "dead", "canceled"];

export interface TaskSummary {
  id: string;
  name: string;
  queue: string;
  state: TaskState;
  attempt: number;
  maxAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: number | null;
  progressMessage: string | null;
  lastError: { name: string; message: string } | null;
  user: { id: string; name: string | null } | null;
}

export type Preview = null | boolean | number | string | Preview[] | { [key: string]: Preview };

export interface TaskDetail extends TaskSummary {
  priority: number;
  runAt: string;
  timeoutMs: number;
  workerId: string | null;
  /** Canceled while it ran, and that run has not ended yet: not to be retried or deleted. */
  stopping: boolean;
  withUserConnection: boolean;
  culture: string | null;
  timeZone: string | null;
  parameters: Preview;
  parametersBytes: number;
  parametersError: string | null;
  errors: { attempt: number; at: string; name: string; message: string; stack: string | null }[];
}
