// Narrowing accessors over moddle elements, and the way problems name an element.
import type { ModdleElement } from "bpmn-moddle";

export function isElement(value: unknown): value is ModdleElement {
  return typeof value === "object" && value !== null && typeof (value as { $type?: unknown }).$type === "string";
}

export function stringProp(element: ModdleElement, property: string): string | undefined {
  const value = element[property];
  return typeof value === "string" ? value : undefined;
}

export function elementProp(element: ModdleElement, property: string): ModdleElement | undefined {
  const value = element[property];
  return isElement(value) ? value : undefined;
}

export function elementsProp(element: ModdleElement, property: string): readonly ModdleElement[] {
  const value = element[property];
  return Array.isArray(value) ? value.filter(isElement) : [];
}

/** `bpmn:UserTask "Approve" (Task_1)`; the name and the id are left out when absent. */
export function describe(element: ModdleElement): string {
  const name = stringProp(element, "name")?.replace(/\s+/g, " ").trim();
  const id = stringProp(element, "id");
  return `${element.$type}${name ? ` "${name}"` : ""}${id ? ` (${id})` : ""}`;
}
