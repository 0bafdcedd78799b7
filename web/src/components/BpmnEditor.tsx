import Modeler from "bpmn-js/lib/Modeler";
import { useEffect, useRef, useState } from "preact/hooks";
import { underwayModdlePackage } from "../../../src/platform/processes/bpmn/underway-moddle.ts";
import { CodeEditor, type LineProblem } from "./CodeEditor.tsx";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css";

interface BusinessObject {
  id: string;
  name?: string;
  script?: string;
  $type: string;
  get(name: string): unknown;
}
interface Shape {
  id: string;
  type: string;
  businessObject: BusinessObject;
}
interface Modeling {
  updateProperties(element: Shape, properties: Record<string, unknown>): void;
}
interface EventBus {
  on(event: string, fn: (e: { newSelection?: Shape[]; element?: Shape; trigger?: string }) => void): void;
}
interface Registry {
  get(id: string): Shape | undefined;
  filter(fn: (element: Shape & { waypoints?: unknown; labelTarget?: unknown }) => boolean): Shape[];
}
interface Selection {
  select(element: Shape): void;
}

export interface BpmnEditorHandle {
  saveXML(): Promise<string>;
  select(elementId: string): void;
}

/**
 * The bpmn-js modeler with a properties panel for the selected element: its name, and for a
 * script task the TypeScript body and the usings.
 */
export function BpmnEditor({
  docKey,
  xml,
  onChange,
  scriptProblems,
  handle,
}: {
  docKey: string;
  xml: string;
  onChange: () => void;
  /** Problems per element id, lines within the script body. */
  scriptProblems: Record<string, LineProblem[]>;
  handle: { current: BpmnEditorHandle | null };
}) {
  const host = useRef<HTMLDivElement>(null);
  const modeler = useRef<Modeler | null>(null);
  const [selected, setSelected] = useState<Shape | null>(null);
  const [, setRevision] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    const m = new Modeler({ container: host.current, moddleExtensions: { underway: underwayModdlePackage } });
    modeler.current = m;
    const bus = m.get<EventBus>("eventBus");
    bus.on("selection.changed", (e) => setSelected(e.newSelection?.length === 1 ? (e.newSelection[0] ?? null) : null));
    bus.on("commandStack.changed", (e) => {
      if (e.trigger === "clear") return; // importing a diagram is not a change
      setRevision((r) => r + 1);
      changed.current();
    });
    handle.current = {
      saveXML: async () => (await m.saveXML({ format: true })).xml ?? "",
      select: (id) => {
        const shape = m.get<Registry>("elementRegistry").get(id);
        if (shape) m.get<Selection>("selection").select(shape);
      },
    };
    m.importXML(xml).then(
      () => {
        (m.get("canvas") as { zoom(level: string): void }).zoom("fit-viewport");
        setError(null);
        setRevision((r) => r + 1); // the element list reads the imported diagram
      },
      (err: unknown) => setError((err as Error).message),
    );
    return () => {
      handle.current = null;
      m.destroy();
      modeler.current = null;
      setSelected(null);
    };
  }, [docKey]);

  const update = (properties: Record<string, unknown>): void => {
    if (!selected || !modeler.current) return;
    modeler.current.get<Modeling>("modeling").updateProperties(selected, properties);
  };
  const bo = selected?.businessObject;
  const isScript = bo?.$type === "bpmn:ScriptTask";
  // The diagram's elements (not its flows, labels or the process itself), for choosing one by
  // keyboard: the canvas offers no keyboard way to select a single element.
  const elements =
    modeler.current
      ?.get<Registry>("elementRegistry")
      .filter((e) => !e.waypoints && !e.labelTarget && e.type !== "label" && e.type !== "bpmn:Process" && e.type !== "bpmn:Collaboration")
      .sort((a, b) => (a.businessObject.name || a.id).localeCompare(b.businessObject.name || b.id)) ?? [];
  const choose = (id: string): void => {
    const m = modeler.current;
    const shape = id ? m?.get<Registry>("elementRegistry").get(id) : undefined;
    if (m && shape) m.get<Selection>("selection").select(shape);
  };

  return (
    <div class="modeler-wrap">
      {error && <p class="error">The diagram cannot be opened: {error}</p>}
      <div class="modeler" ref={host} data-testid="bpmn-modeler" />
      <aside class="properties card" data-testid="properties-panel">
        <h3>Properties</h3>
        <label>
          Element
          <select value={selected?.id ?? ""} onChange={(e) => choose(e.currentTarget.value)} data-testid="element-choice">
            <option value="">{elements.length ? "Choose one…" : "The diagram has no element"}</option>
            {elements.map((e) => (
              <option key={e.id} value={e.id}>
                {e.businessObject.name || e.id} ({e.type.replace("bpmn:", "")})
              </option>
            ))}
          </select>
        </label>
        {!bo && <p class="muted">Select an element of the diagram, or choose one above.</p>}
        {bo && (
          <>
            <div class="muted small">
              {bo.$type.replace("bpmn:", "")} · {bo.id}
            </div>
            <label>
              Name
              <input key={`${bo.id}-name`} value={bo.name ?? ""} onChange={(e) => update({ name: e.currentTarget.value })} />
            </label>
            {isScript && (
              <>
                <label>
                  Usings (schemas the script uses, comma separated)
                  <input
                    key={`${bo.id}-usings`}
                    value={String(bo.get("underway:usings") ?? "")}
                    onChange={(e) => update({ "underway:usings": e.currentTarget.value })}
                  />
                </label>
                <div class="label">Script body (TypeScript; return true to go on)</div>
                <CodeEditor
                  docKey={`${docKey}:${bo.id}`}
                  value={bo.script ?? ""}
                  onChange={(text) => update({ script: text })}
                  problems={scriptProblems[bo.id] ?? []}
                  minHeight={180}
                  wrap
                  testId="script-editor"
                  label={`Script of ${bo.name || bo.id}`}
                />
              </>
            )}
          </>
        )}
      </aside>
    </div>
  );
}
