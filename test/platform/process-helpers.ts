/** Small BPMN documents for engine tests, built from a list of steps. */
export type Step =
  | { readonly kind: "script"; readonly id: string; readonly name?: string; readonly body: string; readonly usings?: readonly string[] }
  | { readonly kind: "gateway"; readonly id: string; readonly branches: readonly { readonly condition?: string; readonly steps: readonly Step[] }[] }
  | { readonly kind: "end"; readonly id: string; readonly terminate?: boolean };

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A process: start -> steps...; every path must end with an "end" step. */
export function processXml(code: string, name: string, steps: readonly Step[], parameters: readonly { name: string; type: string; default?: string }[] = []): string {
  const nodes: string[] = [];
  const flows: string[] = [];
  let n = 0;
  const flow = (from: string, to: string, condition?: string): string => {
    const id = `Flow_${++n}`;
    flows.push(
      `<bpmn:sequenceFlow id="${id}" sourceRef="${from}" targetRef="${to}">${condition ? `<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${esc(condition)}</bpmn:conditionExpression>` : ""}</bpmn:sequenceFlow>`,
    );
    return id;
  };
  const chain = (from: string, list: readonly Step[], condition?: string): void => {
    let previous = from;
    let pending = condition;
    for (const step of list) {
      flow(previous, step.id, pending);
      pending = undefined;
      if (step.kind === "script") {
        nodes.push(
          `<bpmn:scriptTask id="${step.id}" name="${esc(step.name ?? step.id)}" scriptFormat="typescript"${step.usings ? ` underway:usings="${step.usings.join(",")}"` : ""}><bpmn:script>${esc(step.body)}</bpmn:script></bpmn:scriptTask>`,
        );
        previous = step.id;
      } else if (step.kind === "end") {
        nodes.push(`<bpmn:endEvent id="${step.id}" name="${step.id}">${step.terminate ? `<bpmn:terminateEventDefinition id="${step.id}_def"/>` : ""}</bpmn:endEvent>`);
        return;
      } else {
        const defaultBranch = step.branches.findIndex((b) => b.condition === undefined);
        const ids: string[] = [];
        for (const branch of step.branches) {
          const before = n;
          chain(step.id, branch.steps, branch.condition);
          ids.push(`Flow_${before + 1}`);
        }
        nodes.push(`<bpmn:exclusiveGateway id="${step.id}" name="${step.id}"${defaultBranch >= 0 ? ` default="${ids[defaultBranch]}"` : ""}/>`);
        return;
      }
    }
  };
  nodes.push(`<bpmn:startEvent id="Start" name="Start"/>`);
  chain("Start", steps);
  const params = parameters.length
    ? `<bpmn:extensionElements>${parameters.map((p) => `<underway:parameter name="${p.name}" type="${p.type}"${p.default !== undefined ? ` default="${esc(p.default)}"` : ""}/>`).join("")}</bpmn:extensionElements>`
    : "";
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:underway="http://underway.dev/schema/bpmn" id="Defs_${code}" targetNamespace="http://underway.dev/test">
  <bpmn:process id="${code}" name="${esc(name)}" isExecutable="true">${params}${nodes.join("")}${flows.join("")}</bpmn:process>
</bpmn:definitions>`;
}
