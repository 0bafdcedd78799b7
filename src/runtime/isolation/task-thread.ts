/**
 * Whether this thread is an isolated task's worker thread, and which task modules it is importing:
 * a mark thread-main sets before it loads any task code, kept on the global object so that every
 * copy of underway's modules in the thread (the bundle's, a task module's own import) sees it.
 */
const MARK = Symbol.for("underway.taskThread");

interface TaskThreadMark {
  /** The task modules being imported now (their top-level code is running). */
  readonly loading: Set<string>;
}

/** Marks this thread as a task thread (thread-main, before any task code runs). */
export function markTaskThread(): TaskThreadMark {
  const global = globalThis as Record<symbol, unknown>;
  const mark = (global[MARK] as TaskThreadMark | undefined) ?? { loading: new Set<string>() };
  global[MARK] = mark;
  return mark;
}

/** This thread's mark, or null outside task threads. */
export function taskThreadMark(): TaskThreadMark | null {
  return ((globalThis as Record<symbol, unknown>)[MARK] as TaskThreadMark | undefined) ?? null;
}

/**
 * Refuses a runtime with a worker in a task thread: its worker would boot task threads of its own,
 * which import the task modules again, and a module that starts a runtime at its top level (the
 * class and the application's start in one file) would then start one in every thread, without
 * end. A runtime without a worker (to start tasks in another store, say) is allowed.
 */
export function refuseWorkerInTaskThread(what: string): void {
  const mark = taskThreadMark();
  if (!mark) return;
  const loading = [...mark.loading];
  const where = loading.length > 0 ? ` while the thread imported ${loading.join(", ")}` : "";
  throw new Error(
    `${what} with a worker was called in an isolated task's thread${where}. A task thread runs attempts only: a worker ` +
      `there would boot threads of its own, which import the task modules again, without end. Start the runtime in your ` +
      `application's entry module, not in a module that defines task classes (threads import that module to find them), ` +
      `or guard the start with \`if (isMainThread)\` from node:worker_threads; a runtime with \`worker: false\` may be created in a task.`,
  );
}
