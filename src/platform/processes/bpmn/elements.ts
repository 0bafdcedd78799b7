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

/**
 * Characters no store keeps as they are: NUL (PostgreSQL's text refuses it) and a lone UTF-16
 * surrogate (UTF-8 cannot encode one; the driver would store U+FFFD instead). A character
 * reference (`&#0;`) brings them into a BPMN file that is itself plain ASCII.
 */
// eslint-disable-next-line no-control-regex -- NUL is what it looks for.
export const UNSTORABLE_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The text with its unstorable characters written as escapes (`\u0000`), fit for a message. */
export function shownText(text: string): string {
  return text.replace(UNSTORABLE_TEXT, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`);
}

/** `bpmn:UserTask "Approve" (Task_1)`; the name and the id are left out when absent. */
export function describe(element: ModdleElement): string {
  const name = stringProp(element, "name")?.replace(/\s+/g, " ").trim();
  const id = stringProp(element, "id");
  return `${element.$type}${name ? ` "${shownText(name)}"` : ""}${id ? ` (${shownText(id)})` : ""}`;
}
