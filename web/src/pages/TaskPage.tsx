import { useRef, useState } from "preact/hooks";
import { api } from "../api.ts";
import { when } from "../format.ts";
import { useLive } from "../live.ts";
import { href, navigate } from "../router.ts";
import type { TaskDetail } from "./tasks-types.ts";

/** One task: parameters, attempts with errors and stacks, progress, who started it; actions. */
export function TaskPage({ id }: { id: string }) {
  const [task, setTask] = useState<TaskDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // The states an action's notice speaks of ("Queued again." of a queued or running task): once
  // the task is in another (it ran and died again, say), the notice goes.
  const noticeStates = useRef<readonly string[] | null>(null);
  const wellFormed = /^[1-9][0-9]*$/.test(id);

  const load = async (isCurrent: () => boolean = () => true): Promise<void> => {
    if (!wellFormed) return;
    try {
      const detail = await api<TaskDetail>("GET", `/api/tasks/${encodeURIComponent(id)}`);
      if (!isCurrent()) return;
      setTask(detail);
      setError(null);
      if (noticeStates.current !== null && !noticeStates.current.includes(detail.state)) {
        noticeStates.current = null;
        setNotice(null);
      }
    } catch (err) {
      if (isCurrent()) setError((err as Error).message);
    }
  };
  useLive("tasks", load, [id]);

  // Checked at the click itself, before the page renders the buttons disabled: a double-click
  // sends one request, not a second that the server refuses ("already canceled").
  const acting = useRef(false);
  const act = async (verb: "retry" | "cancel" | "delete"): Promise<void> => {
    if (acting.current) return;
    if (verb === "delete" && !window.confirm(`Delete task ${id} and its error history?`)) return;
    acting.current = true;
    setBusy(true);
    try {
      if (verb === "delete") {
        await api("DELETE", `/api/tasks/${encodeURIComponent(id)}`);
        navigate("tasks");
        return;
      }
      await api("POST", `/api/tasks/${encodeURIComponent(id)}/${verb}`);
      // Set before the task is read again: it may have run and ended already.
      noticeStates.current = verb === "retry" ? ["queued", "running"] : ["canceled", "running"];
      setNotice(verb === "retry" ? "Queued again." : "Canceled.");
      await load();
    } catch (err) {
      setNotice(null);
      setError((err as Error).message);
    } finally {
      acting.current = false;
      setBusy(false);
    }
  };

  if (!task) {
    return (
      <section>
        <p>
          <a href={href("tasks")}>← Background tasks</a>
        </p>
        {!wellFormed ? (
          <p class="error">{`There is no task ${JSON.stringify(id)}: a task's number is written in digits, as in #/tasks/42.`}</p>
        ) : error ? (
          <p class="error">{error}</p>
        ) : (
          <p class="muted">Loading…</p>
        )}
      </section>
    );
  }
  // A task canceled while it ran waits for that run to end before it can run again or go.
  const canRetry = ["failed", "dead", "canceled"].includes(task.state) && !task.stopping;
  const canCancel = ["queued", "failed", "running"].includes(task.state);
  const canDelete = task.state !== "running" && !task.stopping;
  return (
    <section data-testid="task-page">
      <p>
        <a href={href("tasks")}>← Background tasks</a>
      </p>
      <div class="section-head">
        <h1>
          {task.name} <span class="muted">#{task.id}</span>
        </h1>
        <span class={`pill big state-${task.state}`} data-testid="task-state">
          {task.state}
        </span>
        <span class="spacer" />
        <button onClick={() => void act("retry")} disabled={busy || !canRetry}>
          Retry
        </button>
        <button onClick={() => void act("cancel")} disabled={busy || !canCancel}>
          Cancel
        </button>
        <button class="danger" onClick={() => void act("delete")} disabled={busy || !canDelete}>
          Delete
        </button>
      </div>
      {task.stopping && (
        <p class="notice" data-testid="task-stopping">
          Stopping: the run under way when the task was canceled has not ended yet. Retry and Delete are possible once it has.
        </p>
      )}
      {notice && <p class="notice">{notice}</p>}
      {error && <p class="error">{error}</p>}
      {task.progress !== null && (
        <div class="progress" title={task.progressMessage ?? ""}>
          <div class="bar" style={{ width: `${Math.round(task.progress * 100)}%` }} />
          <span>
            {Math.round(task.progress * 100)}% {task.progressMessage ?? ""}
          </span>
        </div>
      )}
      <div class="columns">
        <dl class="facts card">
          <dt>Started by</dt>
          <dd>{task.user ? `${task.user.name ?? task.user.id}${task.withUserConnection ? " (runs as this user)" : ""}` : "— (no user)"}</dd>
          {task.culture && (
            <>
              <dt>Culture / time zone</dt>
              <dd>
                {task.culture} / {task.timeZone ?? "—"}
              </dd>
            </>
          )}
          <dt>Queue / priority</dt>
          <dd>
            {task.queue} / {task.priority}
          </dd>
          <dt>Attempts</dt>
          <dd>
            {task.attempt} of {task.maxAttempts}
          </dd>
          <dt>Created</dt>
          <dd data-testid="task-created">{when(task.createdAt)}</dd>
          <dt>Run at</dt>
          <dd>{when(task.runAt)}</dd>
          <dt>Started</dt>
          <dd>{when(task.startedAt)}</dd>
          <dt>Finished</dt>
          <dd>{when(task.finishedAt)}</dd>
          <dt>Timeout</dt>
          <dd>{task.timeoutMs ? `${task.timeoutMs.toLocaleString()} ms` : "none"}</dd>
          <dt>Worker</dt>
          <dd class="mono">{task.workerId ?? "—"}</dd>
        </dl>
        <div class="card grow">
          <h2>
            Parameters <span class="muted">({task.parametersBytes.toLocaleString()} bytes, MessagePack)</span>
          </h2>
          {task.parametersError ? <p class="error">{task.parametersError}</p> : <pre class="json" data-testid="task-parameters">{JSON.stringify(task.parameters, null, 2)}</pre>}
        </div>
      </div>
      <h2>Failed attempts</h2>
      {task.errors.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ol class="attempts" data-testid="task-errors">
          {task.errors.map((e) => (
            <li key={`${e.attempt}-${e.at}`}>
              <div>
                <strong>Attempt {e.attempt}</strong> <span class="muted">{when(e.at)}</span>
              </div>
              <div class="attempt-error">
                {e.name}: {e.message}
              </div>
              {e.stack && (
                <details>
                  <summary>Stack</summary>
                  <pre class="stack">{e.stack}</pre>
                </details>
              )}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
