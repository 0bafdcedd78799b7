import { useState } from "preact/hooks";
import { api, ApiError, currentUser, query } from "../api.ts";
import { ActivityChart, type Buckets } from "../components/ActivityChart.tsx";
import { ago, count } from "../format.ts";
import { useLive } from "../live.ts";
import { href } from "../router.ts";
import { TASK_STATES, type TaskState, type TaskSummary } from "./tasks-types.ts";

interface Filters {
  state: TaskState | "";
  name: string;
  user: string;
  queue: string;
}
const NO_FILTERS: Filters = { state: "", name: "", user: "", queue: "" };
const PAGE = 25;

/** The task centre: counts per state, charts, and the filtered list, live. */
export function Tasks() {
  const admin = currentUser.value?.isAdmin ?? false;
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  // Keyset paging: the `before` of every page seen, to go back.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const before = cursors[cursors.length - 1] ?? null;
  const [items, setItems] = useState<TaskSummary[] | null>(null);
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const [counts, setCounts] = useState<{ counts: Record<TaskState, number>; cap: number } | null>(null);
  const [chart, setChart] = useState<Buckets | null>(null);
  const [error, setError] = useState<string | null>(null);

  useLive(
    "tasks",
    async (isCurrent) => {
      try {
        const [page, c, a] = await Promise.all([
          api<{ items: TaskSummary[]; nextBefore: string | null }>(
            "GET",
            `/api/tasks${query({ state: filters.state, name: filters.name, queue: filters.queue, user: admin ? filters.user : "", before, limit: PAGE })}`,
          ),
          api<{ counts: Record<TaskState, number>; cap: number }>("GET", "/api/tasks/counts"),
          api<Buckets>("GET", "/api/tasks/activity"),
        ]);
        if (!isCurrent()) return;
        setItems(page.items);
        setNextBefore(page.nextBefore);
        setCounts(c);
        setChart(a);
        setError(null);
      } catch (err) {
        if (!isCurrent()) return;
        setError((err as Error).message);
        // A refused filter: the rows shown are the previous filter's, not this one's.
        if (err instanceof ApiError && err.status === 400) setItems(null);
      }
    },
    [filters, before],
  );

  const apply = (next: Filters): void => {
    setDraft(next);
    setFilters({ ...next, name: next.name.trim(), user: next.user.trim(), queue: next.queue.trim() });
    setCursors([null]);
  };

  return (
    <section>
      <div class="section-head">
        <h1>Background tasks</h1>
        <span class="muted">{admin ? "All users' tasks" : "Tasks you started"}</span>
      </div>
      <div class="counts" data-testid="task-counts">
        {TASK_STATES.map((s) => (
          <button key={s} class={`count state-${s} ${filters.state === s ? "selected" : ""}`} onClick={() => apply({ ...draft, state: filters.state === s ? "" : s })}>
            <span class="n">{counts ? count(counts.counts[s], counts.cap) : "…"}</span>
            <span class="label">{s}</span>
          </button>
        ))}
      </div>
      <ActivityChart data={chart} />
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <select aria-label="State" value={draft.state} onChange={(e) => apply({ ...draft, state: e.currentTarget.value as TaskState | "" })}>
          <option value="">any state</option>
          {TASK_STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <input aria-label="Type" placeholder="type (task name)" maxLength={200} value={draft.name} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} />
        {admin && <input aria-label="User" placeholder="user (login)" maxLength={250} value={draft.user} onInput={(e) => setDraft({ ...draft, user: e.currentTarget.value })} />}
        <input aria-label="Queue" placeholder="queue" maxLength={200} value={draft.queue} onInput={(e) => setDraft({ ...draft, queue: e.currentTarget.value })} />
        <button type="submit">Filter</button>
        <button type="button" class="link" onClick={() => apply(NO_FILTERS)}>
          Clear
        </button>
      </form>
      {error && <p class="error">{error}</p>}
      <table class="grid" data-testid="tasks">
        <thead>
          <tr>
            <th>#</th>
            <th>Type</th>
            <th>State</th>
            <th>User</th>
            <th>Queue</th>
            <th>Attempts</th>
            <th>Created</th>
            <th>Last error</th>
          </tr>
        </thead>
        <tbody>
          {items?.map((t) => (
            <tr key={t.id} data-task-id={t.id}>
              <td>
                <a href={href("tasks", t.id)}>{t.id}</a>
              </td>
              <td class="strong">
                <a href={href("tasks", t.id)}>{t.name}</a>
              </td>
              <td>
                <span class={`pill state-${t.state}`}>{t.state}</span>
                {t.state === "running" && t.progress !== null && <span class="muted"> {Math.round(t.progress * 100)}%</span>}
              </td>
              <td>{t.user?.name ?? "—"}</td>
              <td>{t.queue}</td>
              <td>
                {t.attempt}/{t.maxAttempts}
              </td>
              <td title={t.createdAt}>{ago(t.createdAt)}</td>
              <td class="error-text">{t.lastError ? `${t.lastError.name}: ${t.lastError.message}` : ""}</td>
            </tr>
          ))}
          {items?.length === 0 && (
            <tr>
              <td colSpan={8} class="empty">
                No tasks match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <div class="pager">
        <button disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Newer
        </button>
        <button disabled={nextBefore === null} onClick={() => nextBefore && setCursors([...cursors, nextBefore])}>
          Older →
        </button>
      </div>
    </section>
  );
}
