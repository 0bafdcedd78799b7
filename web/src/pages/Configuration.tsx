import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../api.ts";
import { BpmnEditor, type BpmnEditorHandle } from "../components/BpmnEditor.tsx";
import { CodeEditor, type LineProblem } from "../components/CodeEditor.tsx";
import { when } from "../format.ts";
import { guardLeaving, leaveAllowed } from "../router.ts";

interface PackageInfo {
  name: string;
  description: string | null;
  dependencies: string[];
  /** Set when the package's stored dependencies cannot be read: why (dependencies is then empty, not the real ones). */
  dependenciesError?: string;
  version: number | null;
}
interface SchemaRecord {
  name: string;
  kind: "source" | "process";
  caption: string;
  body: string;
  modifiedOn: string | null;
}
/** A compile problem; a script's problems name `ProcessCode/ElementId` as their schema. */
interface CompileProblem extends LineProblem {
  schema: string;
}
type Problem = CompileProblem | string;

/** The Configuration section: packages, their schemas, the editors, Save and Publish. */
export function Configuration() {
  const [packages, setPackages] = useState<PackageInfo[] | null>(null);
  const [pkg, setPkg] = useState<string | null>(null);
  const [schemas, setSchemas] = useState<SchemaRecord[] | null>(null);
  const [current, setCurrent] = useState<SchemaRecord | null>(null);
  const [text, setText] = useState("");
  const [dirty, setDirty] = useState(false);
  const [problems, setProblems] = useState<Problem[]>([]);
  // Where the problems shown came from: a save's refusal is over once a save succeeds; a failed
  // publish's compile errors stand until the next publish.
  const problemsFrom = useRef<"save" | "publish">("publish");
  const [status, setStatus] = useState<{ text: string; error?: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const modeler = useRef<BpmnEditorHandle | null>(null);
  // Read by the leave guard, which is set once.
  const unsaved = useRef<string | null>(null);
  unsaved.current = dirty && current ? current.name : null;
  useEffect(
    () => guardLeaving(() => (unsaved.current ? `${unsaved.current} has unsaved changes. Leave it and lose them?` : null)),
    [],
  );

  const loadPackages = async (): Promise<void> => {
    const r = await api<{ items: PackageInfo[] }>("GET", "/api/packages");
    setPackages(r.items);
    setPkg((p) => p ?? r.items[0]?.name ?? null);
  };
  useEffect(() => {
    loadPackages().catch((err: Error) => setStatus({ text: err.message, error: true }));
  }, []);
  useEffect(() => {
    if (!pkg) return;
    // Only the package selected last: an earlier selection's answer that arrives later would list
    // its schemas under this package, and Save and Publish would then act on the wrong one.
    let selected = true;
    setSchemas(null);
    open(null);
    api<{ items: SchemaRecord[] }>("GET", `/api/packages/${encodeURIComponent(pkg)}/schemas`).then(
      (r) => {
        if (!selected) return;
        setSchemas(r.items);
        open(r.items[0] ?? null);
      },
      (err: Error) => {
        if (selected) setStatus({ text: err.message, error: true });
      },
    );
    return () => {
      selected = false;
    };
  }, [pkg]);

  const open = (schema: SchemaRecord | null): void => {
    setCurrent(schema);
    setText(schema?.body ?? "");
    setDirty(false);
  };

  const save = async (): Promise<boolean> => {
    if (!pkg || !current) return false;
    const body = current.kind === "process" ? ((await modeler.current?.saveXML()) ?? current.body) : text;
    try {
      await api("PUT", `/api/packages/${encodeURIComponent(pkg)}/schemas/${encodeURIComponent(current.name)}`, { kind: current.kind, caption: current.caption, body });
      const saved = { ...current, body, modifiedOn: new Date().toISOString() };
      setSchemas((list) => list?.map((s) => (s.name === saved.name ? saved : s)) ?? null);
      setCurrent(saved);
      setDirty(false);
      setStatus({ text: `Saved ${current.name}.` });
      if (problemsFrom.current === "save") setProblems([]);
      return true;
    } catch (err) {
      const e = err as ApiError;
      problemsFrom.current = "save";
      setProblems(Array.isArray(e.body?.problems) ? (e.body.problems as Problem[]) : []);
      setStatus({ text: e.message, error: true });
      return false;
    }
  };

  const run = async (what: "save" | "publish"): Promise<void> => {
    setBusy(true);
    setStatus(null);
    try {
      if (what === "save" || dirty) {
        if (!(await save())) return;
        if (what === "save") return;
      }
      const r = await api<{ version: number }>("POST", `/api/packages/${encodeURIComponent(pkg ?? "")}/publish`);
      problemsFrom.current = "publish";
      setProblems([]);
      setStatus({ text: `Published ${pkg} version ${r.version}.` });
      await loadPackages();
    } catch (err) {
      const e = err as ApiError;
      problemsFrom.current = "publish";
      setProblems(Array.isArray(e.body?.problems) ? (e.body.problems as Problem[]) : []);
      setStatus({ text: e.status === 422 ? "Publish failed: the package does not compile. The previous build stays in use." : e.message, error: true });
    } finally {
      setBusy(false);
    }
  };

  const own = (p: Problem): p is CompileProblem => typeof p !== "string";
  const sourceProblems = problems.filter(own).filter((p) => p.schema === current?.name);
  const scriptProblems: Record<string, LineProblem[]> = {};
  for (const p of problems.filter(own)) {
    const [process, element] = p.schema.split("/");
    if (current && process === current.name && element) (scriptProblems[element] ??= []).push(p);
  }
  const selectProblem = (p: Problem): void => {
    if (!own(p)) return;
    const [schemaName, element] = p.schema.split("/");
    const target = schemas?.find((s) => s.name === schemaName);
    if (target && target.name !== current?.name) {
      if (!leaveAllowed()) return;
      open(target);
    }
    if (element) setTimeout(() => modeler.current?.select(element), 300);
  };

  return (
    <section>
      <div class="section-head">
        <h1>Configuration</h1>
      </div>
      <div class="config">
        <aside class="card packages" data-testid="packages">
          {packages?.map((p) => (
            <div key={p.name} class={p.name === pkg ? "pkg selected" : "pkg"}>
              <button class="link title" onClick={() => p.name !== pkg && leaveAllowed() && setPkg(p.name)}>
                {p.name}
              </button>
              <span class="muted small"> {p.version === null ? "not published" : `v${p.version}`}</span>
              {p.dependenciesError && (
                <div class="error small row-error" data-testid="dependencies-error">
                  Dependencies cannot be read: {p.dependenciesError}
                </div>
              )}
              {p.name === pkg && (
                <ul class="plain schemas">
                  {schemas?.map((s) => (
                    <li key={s.name}>
                      <button class={`link ${s.name === current?.name ? "current" : ""}`} data-schema={s.name} onClick={() => s.name !== current?.name && leaveAllowed() && open(s)}>
                        <span class={`kind kind-${s.kind}`}>{s.kind === "process" ? "process" : "source"}</span> {s.name}
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </div>
          ))}
        </aside>
        <div class="grow">
          {/* Without a schema open (the packages or their schemas could not be loaded), the status still shows. */}
          {!current && status && (
            <p class={status.error ? "error" : "notice"} data-testid="config-status">
              {status.text}
            </p>
          )}
          {current && (
            <>
              <div class="editor-head">
                <h2>
                  {current.name} <span class="muted small">{current.caption !== current.name ? current.caption : ""}</span>
                </h2>
                <span class="muted small">{dirty ? "unsaved changes" : `saved ${when(current.modifiedOn)}`}</span>
                <span class="spacer" />
                <button onClick={() => void run("save")} disabled={busy}>
                  Save
                </button>
                <button class="primary" onClick={() => void run("publish")} disabled={busy}>
                  Publish
                </button>
              </div>
              {status && (
                <p class={status.error ? "error" : "notice"} data-testid="config-status">
                  {status.text}
                </p>
              )}
              {problems.length > 0 && (
                <ul class="problems" data-testid="problems">
                  {problems.map((p, i) => (
                    <li key={i}>
                      {own(p) ? (
                        <button class="link" onClick={() => selectProblem(p)}>
                          {p.schema}:{p.line}:{p.column}: {p.message}
                        </button>
                      ) : (
                        p
                      )}
                    </li>
                  ))}
                </ul>
              )}
              {current.kind === "source" ? (
                <CodeEditor
                  docKey={`${pkg}/${current.name}`}
                  value={current.body}
                  onChange={(t) => {
                    setText(t);
                    setDirty(true);
                  }}
                  problems={sourceProblems}
                  testId="source-editor"
                  label={`Source of ${current.name}`}
                />
              ) : (
                <BpmnEditor docKey={`${pkg}/${current.name}`} xml={current.body} onChange={() => setDirty(true)} scriptProblems={scriptProblems} handle={modeler} />
              )}
            </>
          )}
        </div>
      </div>
    </section>
  );
}
