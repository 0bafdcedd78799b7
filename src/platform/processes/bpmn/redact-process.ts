import type { ModdleElement } from "bpmn-moddle";
import { isElement } from "./elements.ts";
import { readDefinitions, writeDefinitions } from "./moddle.ts";

/**
 * The process's diagram without its code, for users who may run a process but not read its
 * configuration: every script (a script task's body, however the file spelled it: an element, an
 * attribute, CDATA, any namespace prefix) and every expression's body (a flow's condition, a loop's
 * or a timer's) are emptied on the model moddle read, and the model is written back. Working on
 * the model rather than on the text means that what the engine would run is exactly what is
 * removed. Throws BpmnDefinitionError when the document cannot be read.
 */
export async function withoutProcessCode(xml: string): Promise<string> {
  const { definitions } = await readDefinitions(xml);
  const seen = new Set<ModdleElement>();
  const visit = (element: ModdleElement): void => {
    if (seen.has(element)) return;
    seen.add(element);
    for (const key of Object.keys(element)) {
      if (key.startsWith("$")) continue;
      const value = element[key];
      if ((key === "script" || key === "body") && typeof value === "string") {
        element.set(key, "");
      } else if (isElement(value)) {
        visit(value);
      } else if (Array.isArray(value)) {
        for (const item of value) if (isElement(item)) visit(item);
      }
    }
  };
  visit(definitions);
  // Unindented: indenting a deeply nested diagram would multiply its size by its depth.
  return writeDefinitions(definitions, { format: false });
}
