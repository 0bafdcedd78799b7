import { useState } from "preact/hooks";
import { api, ApiError, query } from "../api.ts";
import { when } from "../format.ts";
import { useLive } from "../live.ts";

interface Lookup {
  id: string;
  name: string | null;
}
interface ActivityRow {
  id: string;
  title: string;
  startDate: string | null;
  dueDate: string | null;
  status: Lookup | null;
  owner: Lookup | null;
  category: Lookup | null;
  type: Lookup | null;
}

const PAGE = 20;

/** The Activities section: the records the user may read, newest first, live. */
export function Activities() {
  const [filter, setFilter] = useState("");
  const [title, setTitle] = useState("");
  const [offset, setOffset] = useState(0);
  const [rows, setRows] = useState<ActivityRow[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  useLive(
    "activities",
    async (isCurrent) => {
      try {
        const page = await api<{ items: ActivityRow[]; nextOffset: number | null }>("GET", `/api/activities${query({ title, limit: PAGE, offset })}`);
        if (!isCurrent()) return;
        setRows(page.items);
        setNext(page.nextOffset);
        setError(null);
      } catch (err) {
        if (!isCurrent()) return;
        setError((err as Error).message);
        // A refused filter: the rows shown are the previous filter's, not this one's.
        if (err instanceof ApiError && err.status === 400) setRows(null);
      }
    },
    [title, offset],
  );

  const apply = (e: Event): void => {
    e.preventDefault();
    setOffset(0);
    setTitle(filter.trim());
  };

  return (
    <section>
      <div class="section-head">
        <h1>Activities</h1>
        <form class="filters" onSubmit={apply}>
          <input type="search" placeholder="Title contains…" aria-label="Title filter" maxLength={250} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
          <button type="submit">Filter</button>
        </form>
      </div>
      {error && <p class="error">{error}</p>}
      <table class="grid" data-testid="activities">
        <thead>
          <tr>
            <th>Title</th>
            <th>Start</th>
            <th>Due</th>
            <th>Status</th>
            <th>Owner</th>
            <th>Category</th>
            <th>Type</th>
          </tr>
        </thead>
        <tbody>
          {rows?.map((a) => (
            <tr key={a.id}>
              <td class="strong">{a.title}</td>
              <td>{when(a.startDate)}</td>
              <td>{when(a.dueDate)}</td>
              <td>
                <span class={`pill status-${(a.status?.name ?? "").toLowerCase().replace(/\s+/g, "-")}`}>{a.status?.name ?? "—"}</span>
              </td>
              <td>{a.owner?.name ?? "—"}</td>
              <td>{a.category?.name ?? "—"}</td>
              <td>{a.type?.name ?? "—"}</td>
            </tr>
          ))}
          {rows?.length === 0 && (
            <tr>
              <td colSpan={7} class="empty">
                {title ? `No activity whose title contains “${title}”.` : "No activities yet. Run a process from the Processes section."}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <div class="pager">
        <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          ← Newer
        </button>
        <span class="muted">{rows && rows.length ? `${offset + 1}–${offset + rows.length}` : ""}</span>
        <button disabled={next === null} onClick={() => next !== null && setOffset(next)}>
          Older →
        </button>
      </div>
    </section>
  );
}
