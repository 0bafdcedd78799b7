import { useEffect, useRef, useState } from "preact/hooks";
import { api, currentUser } from "../api.ts";
import { BpmnDiagram } from "../components/BpmnDiagram.tsx";
import { ago, when } from "../format.ts";
import { useLive } from "../live.ts";
import { href, navigate } from "../router.ts";

interface LibraryProcess {
  code: string;
  title: string;
  packageName: string;
  version: number;
}
interface ElementLog {
  seq: number;
  elementId: string;
  name: string;
  kind: string;
  status: string;
  waiting: boolean;
  errorMessage: string | null;
  startedOn: string | null;
  completedOn: string | null;
}
interface ProcessLog {
  id: string;
  processCode: string;
  title: string;
  packageName: string;
  buildVersion: number;
  status: string;
  errorMessage: string | null;
  taskId: string | null;
  startedOn: string | null;
  completedOn: string | null;
  parameters: Record<string, unknown>;
  /** Set when the instance's stored parameters cannot be read: why (parameters is then empty, not the real ones). */
  parametersError?: string;
  elements: ElementLog[];
}

/** The process library (Run, diagram) and the process log; with an id, one instance's log. */
export function Processes({ instanceId }: { instanceId: string | null }) {
  return instanceId ? <Instance id={instanceId} /> : <Library />;
}

function Library() {
  const [processes, setProcesses] = useState<LibraryProcess[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [xml, setXml] = useState<string | null>(null);
  const [log, setLog] = useState<ProcessLog[] | null>(null);
  const [logError, setLogError] = useState<string | null>(null);
  const [message, setMessage] = useState<{ text: string; instanceId?: string; error?: boolean } | null>(null);

  useEffect(() => {
    api<{ items: LibraryProcess[] }>("GET", "/api/processes").then(
      (r) => {
        setProcesses(r.items);
        setSelected((s) => s ?? r.items[0]?.code ?? null);
      },
      (err: Error) => setMessage({ text: err.message, error: true }),
    );
  }, []);
  useEffect(() => {
    if (!selected) return;
    setXml(null);
    // Another process selected before this answer came: its diagram is the one to show.
    let current = true;
    api<{ xml: string }>("GET", `/api/processes/${encodeURIComponent(selected)}`).then(
      (r) => current && setXml(r.xml),
      (err: Error) => current && setMessage({ text: err.message, error: true }),
    );
    return () => {
      current = false;
    };
  }, [selected]);
  useLive(
    "tasks",
    async (isCurrent) => {
      try {
        const items = (await api<{ items: ProcessLog[] }>("GET", "/api/process-log?limit=20")).items;
        if (isCurrent()) {
          setLog(items);
          setLogError(null);
        }
      } catch (err) {
        if (isCurrent()) setLogError((err as Error).message);
      }
    },
    [],
  );

  // The processes whose run is on its way: a second click (a double-click) does not start another.
  const [running, setRunning] = useState<ReadonlySet<string>>(new Set());
  // Checked at the click itself: the state above shows on the next render only.
  const inFlight = useRef(new Set<string>());
  const run = async (code: string): Promise<void> => {
    if (inFlight.current.has(code)) return;
    inFlight.current.add(code);
    setRunning((now) => new Set(now).add(code));
    try {
      const { instanceId } = await api<{ instanceId: string }>("POST", `/api/processes/${encodeURIComponent(code)}/run`, {});
      setMessage({ text: `Started ${code}: instance `, instanceId });
    } catch (err) {
      setMessage({ text: (err as Error).message, error: true });
    } finally {
      inFlight.current.delete(code);
      setRunning((now) => {
        const next = new Set(now);
        next.delete(code);
        return next;
      });
    }
  };

  return (
    <section>
      <div class="section-head">
        <h1>Processes</h1>
      </div>
      {message && (
        <p class={message.error ? "error" : "notice"} data-testid="run-message">
          {message.text}
          {message.instanceId && <a href={href("processes", message.instanceId)}>{message.instanceId}</a>}
        </p>
      )}
      <div class="columns">
        <div class="card library">
          <h2>Library</h2>
          <ul class="plain" data-testid="process-library">
            {processes?.map((p) => (
              <li key={p.code} class={p.code === selected ? "selected" : ""} data-code={p.code}>
                <button class="link title" onClick={() => setSelected(p.code)}>
                  {p.title}
                </button>
                <div class="muted small">
                  {p.code} · {p.packageName} v{p.version}
                </div>
                <button class="primary" disabled={running.has(p.code)} onClick={() => void run(p.code)}>
                  Run
                </button>
              </li>
            ))}
            {processes?.length === 0 && <li class="muted">No published process. {currentUser.value?.isAdmin ? "Publish one in Configuration." : ""}</li>}
          </ul>
        </div>
        <div class="card grow">{xml ? <BpmnDiagram xml={xml} /> : <p class="muted">Select a process to see its diagram.</p>}</div>
      </div>
      <h2>Process log</h2>
      {logError && (
        <p class="error" data-testid="process-log-error">
          The process log cannot be shown: {logError}
        </p>
      )}
      <table class="grid" data-testid="process-log">
        <thead>
          <tr>
            <th>Process</th>
            <th>Status</th>
            <th>Started</th>
            <th>Completed</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {log?.map((l) => (
            <tr key={l.id} onClick={() => navigate("processes", l.id)} class="clickable">
              <td class="strong">
                <a href={href("processes", l.id)}>{l.title}</a>
                {l.parametersError && (
                  <div class="error small row-error" data-testid="parameters-error">
                    Parameters cannot be read: {l.parametersError}
                  </div>
                )}
              </td>
              <td>
                <span class={`pill status-${l.status.toLowerCase()}`}>{l.status}</span>
              </td>
              <td title={when(l.startedOn)}>{ago(l.startedOn)}</td>
              <td>{when(l.completedOn)}</td>
              <td class="error-text">{l.errorMessage ?? ""}</td>
            </tr>
          ))}
          {log?.length === 0 && (
            <tr>
              <td colSpan={5} class="empty">
                No process has run yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

/** An instance id as the engine makes them (a UUID): anything else is not asked for. */
const INSTANCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function Instance({ id }: { id: string }) {
  const [log, setLog] = useState<ProcessLog | null>(null);
  const [xml, setXml] = useState<string | null>(null);
  const wellFormed = INSTANCE_ID.test(id);
  const [error, setError] = useState<string | null>(
    wellFormed ? null : `no process instance ${JSON.stringify(id.length > 60 ? `${id.slice(0, 60)}…` : id)} that you may see`,
  );
  useLive(
    "tasks",
    async (isCurrent) => {
      if (!wellFormed) return;
      try {
        const instance = await api<ProcessLog>("GET", `/api/process-log/${encodeURIComponent(id)}`);
        if (isCurrent()) {
          setLog(instance);
          setError(null);
        }
      } catch (err) {
        if (isCurrent()) setError((err as Error).message);
      }
    },
    [id],
  );
  useEffect(() => {
    if (!log) return;
    let current = true;
    api<{ xml: string }>("GET", `/api/processes/${encodeURIComponent(log.processCode)}`).then(
      (r) => current && setXml(r.xml),
      () => current && setXml(null),
    );
    return () => {
      current = false;
    };
  }, [log?.processCode]);
  // Checked at the click itself: a double-click sends one cancel, not a second that is refused.
  const canceling = useRef(false);
  const [cancelBusy, setCancelBusy] = useState(false);
  const cancel = async (): Promise<void> => {
    if (canceling.current) return;
    canceling.current = true;
    setCancelBusy(true);
    try {
      await api("POST", `/api/process-log/${encodeURIComponent(id)}/cancel`);
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      canceling.current = false;
      setCancelBusy(false);
    }
  };
  const statuses = Object.fromEntries((log?.elements ?? []).map((e) => [e.elementId, e.status]));
  return (
    <section>
      <p>
        <a href={href("processes")}>← Processes</a>
      </p>
      {error && <p class="error">{error}</p>}
      {log && (
        <>
          <div class="section-head">
            <h1>{log.title}</h1>
            <span class={`pill big status-${log.status.toLowerCase()}`} data-testid="instance-status">
              {log.status}
            </span>
            <span class="spacer" />
            {log.taskId && <a href={href("tasks", log.taskId)}>task #{log.taskId}</a>}
            <button onClick={() => void cancel()} disabled={cancelBusy || log.status !== "Running"}>
              Cancel
            </button>
          </div>
          <p class="muted">
            {log.processCode} · {log.packageName} build {log.buildVersion} · started {when(log.startedOn)}
            {log.completedOn ? ` · ended ${when(log.completedOn)}` : ""}
          </p>
          {log.errorMessage && <p class="error">{log.errorMessage}</p>}
          {xml && <BpmnDiagram xml={xml} statuses={statuses} />}
          <table class="grid" data-testid="instance-elements">
            <thead>
              <tr>
                <th>#</th>
                <th>Element</th>
                <th>Kind</th>
                <th>Status</th>
                <th>Started</th>
                <th>Completed</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {log.elements.map((e) => (
                <tr key={e.seq}>
                  <td>{e.seq}</td>
                  <td class="strong">{e.name || e.elementId}</td>
                  <td>{e.kind}</td>
                  <td>
                    <span class={`pill status-${e.status.toLowerCase()}`}>{e.status}</span>
                    {e.waiting ? <span class="muted"> (waiting)</span> : null}
                  </td>
                  <td>{when(e.startedOn)}</td>
                  <td>{when(e.completedOn)}</td>
                  <td class="error-text">{e.errorMessage ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Parameters</h2>
          {/* Unreadable stored parameters come as none: saying why, not showing an empty object as if it were theirs. */}
          {log.parametersError ? (
            <p class="error" data-testid="instance-parameters-error">
              Parameters cannot be read: {log.parametersError}
            </p>
          ) : (
            <pre class="json" data-testid="instance-parameters">
              {JSON.stringify(log.parameters, null, 2)}
            </pre>
          )}
        </>
      )}
    </section>
  );
}
