import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import { useEffect, useRef, useState } from "preact/hooks";
import { underwayModdlePackage } from "../../../src/platform/processes/bpmn/underway-moddle.ts";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css";

interface Canvas {
  zoom(level: string): void;
  addMarker(element: string, marker: string): void;
}

/** A process diagram drawn by bpmn-js; `statuses` colours elements by their status in an instance. */
export function BpmnDiagram({ xml, statuses }: { xml: string; statuses?: Record<string, string> }) {
  const host = useRef<HTMLDivElement>(null);
  const viewer = useRef<NavigatedViewer | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!host.current) return;
    viewer.current = new NavigatedViewer({ container: host.current, moddleExtensions: { underway: underwayModdlePackage } });
    return () => {
      viewer.current?.destroy();
      viewer.current = null;
    };
  }, []);

  useEffect(() => {
    const v = viewer.current;
    if (!v) return;
    let current = true;
    v.importXML(xml).then(
      () => {
        if (!current) return;
        setError(null);
        const canvas = v.get<Canvas>("canvas");
        canvas.zoom("fit-viewport");
        for (const [element, status] of Object.entries(statuses ?? {})) {
          try {
            canvas.addMarker(element, `status-${status.toLowerCase()}`);
          } catch {
            // an element of an older build that this diagram no longer has
          }
        }
      },
      (err: unknown) => current && setError((err as Error).message),
    );
    return () => {
      current = false;
    };
  }, [xml, JSON.stringify(statuses ?? {})]);

  return (
    <div class="diagram-wrap">
      {error && <p class="error">The diagram cannot be drawn: {error}</p>}
      <div class="diagram" ref={host} data-testid="bpmn-diagram" />
    </div>
  );
}
