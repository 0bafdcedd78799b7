import { javascript } from "@codemirror/lang-javascript";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "preact/hooks";

export interface LineProblem {
  line: number;
  column: number;
  message: string;
}

/** Marks each problem from its line and column to the end of the word there (or the line). */
function diagnosticsOf(state: EditorState, problems: readonly LineProblem[]): Diagnostic[] {
  return problems.map((p) => {
    const line = state.doc.line(Math.min(Math.max(1, p.line), state.doc.lines));
    const from = Math.min(line.from + Math.max(0, p.column - 1), line.to);
    const word = /^[\w$]+/.exec(state.doc.sliceString(from, line.to))?.[0].length ?? 0;
    const to = word > 0 ? from + word : line.to > from ? line.to : from;
    return { from, to, severity: "error", message: p.message };
  });
}

/** A TypeScript editor (CodeMirror 6). A new `docKey` loads `value` afresh. */
export function CodeEditor({
  docKey,
  value,
  onChange,
  problems,
  minHeight = 360,
  wrap = false,
  testId,
  label,
}: {
  docKey: string;
  /** The editor's accessible name, read by screen readers. */
  label: string;
  value: string;
  onChange: (text: string) => void;
  problems: readonly LineProblem[];
  minHeight?: number;
  /** Wraps long lines instead of scrolling (narrow panels). */
  wrap?: boolean;
  testId?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const change = useRef(onChange);
  change.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    view.current = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          javascript({ typescript: true }),
          lintGutter(),
          ...(wrap ? [EditorView.lineWrapping] : []),
          EditorView.contentAttributes.of({ "aria-label": label }),
          EditorView.theme({ "&": { minHeight: `${minHeight}px` }, ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" } }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) change.current(u.state.doc.toString());
          }),
        ],
      }),
    });
    return () => {
      view.current?.destroy();
      view.current = null;
    };
  }, [docKey]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    v.dispatch(setDiagnostics(v.state, diagnosticsOf(v.state, problems)));
  }, [docKey, problems]);

  return <div class="code-editor" ref={host} data-testid={testId} />;
}
