// Process parameters: <underway:parameter name=".." type=".." default=".."/> under the process's
// bpmn:extensionElements. Elements of other namespaces there (camunda:, zeebe:) are ignored.
import type { ModdleElement } from "bpmn-moddle";
import { parseIsoInstant } from "../../db/values.ts";
import { elementProp, elementsProp, stringProp } from "./elements.ts";
import type { ProcessParameterDefinition, ProcessParameterType } from "./types.ts";

export const PROCESS_PARAMETER_TYPES: readonly ProcessParameterType[] = ["text", "integer", "boolean", "guid", "datetime"];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Names an object already has: a parameter so named would be lost or change the parameters object itself. */
const RESERVED = new Set(["__proto__", "constructor", "prototype", "hasOwnProperty", "toString", "valueOf"]);

/**
 * The value checks of text values, by type (a default, or a value given as text): each returns
 * what the value should have been, or undefined if fine.
 */
export const PARAMETER_TEXT_CHECKS: Readonly<Record<ProcessParameterType, (value: string) => string | undefined>> = {
  text: () => undefined,
  integer: (value) => {
    const n = Number(value);
    return /^[+-]?\d+$/.test(value) && n >= INT32_MIN && n <= INT32_MAX ? undefined : "a 32-bit integer";
  },
  boolean: (value) => (value === "true" || value === "false" ? undefined : "true or false"),
  guid: (value) => (GUID.test(value) ? undefined : "a guid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
  datetime: (value) => (parseIsoInstant(value) ? undefined : "an ISO 8601 date or date-time"),
};

export function isParameterType(value: string): value is ProcessParameterType {
  return (PROCESS_PARAMETER_TYPES as readonly string[]).includes(value);
}

export function parseParameters(process: ModdleElement, problems: string[]): ProcessParameterDefinition[] {
  const extensions = elementProp(process, "extensionElements");
  const declared = extensions ? elementsProp(extensions, "values").filter((v) => v.$type === "underway:Parameter") : [];
  const parameters: ProcessParameterDefinition[] = [];
  const seen = new Set<string>();
  declared.forEach((element, index) => {
    const name = stringProp(element, "name");
    if (!name) {
      problems.push(`process parameter #${index + 1} has no name`);
      return;
    }
    const what = `process parameter "${name}"`;
    let ok = true;
    if (!IDENTIFIER.test(name)) {
      problems.push(`${what}: the name must be an identifier (letters, digits, _)`);
      ok = false;
    } else if (RESERVED.has(name)) {
      problems.push(`${what}: the name is reserved (${[...RESERVED].join(", ")})`);
      ok = false;
    }
    if (seen.has(name)) {
      problems.push(`${what} is declared more than once`);
      ok = false;
    }
    seen.add(name);
    const type = stringProp(element, "type");
    const defaultValue = stringProp(element, "default");
    if (type === undefined || !isParameterType(type)) {
      const found = type === undefined ? "has no type" : `has type "${type}"`;
      problems.push(`${what} ${found}; use one of ${PROCESS_PARAMETER_TYPES.join(", ")}`);
      return;
    }
    const expected = defaultValue === undefined ? undefined : PARAMETER_TEXT_CHECKS[type](defaultValue);
    if (expected !== undefined) {
      problems.push(`${what}: default "${defaultValue}" is not ${expected}`);
      ok = false;
    }
    if (ok) parameters.push({ name, type, ...(defaultValue !== undefined ? { defaultValue } : {}) });
  });
  return parameters;
}
