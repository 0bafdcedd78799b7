/**
 * Generated modules: one per business process, holding its scripts and conditions as functions,
 * and the bundle's entry, which lists every schema module and every script and condition.
 */
import type { ProcessCondition, ProcessScript } from "./types.ts";

/** The type of `context` inside scripts and conditions (the same shape as ScriptContext). */
export const CONTEXT_TYPE_NAME = "ScriptContext";

const CONTEXT_INTERFACE = `interface ${CONTEXT_TYPE_NAME} {
  readonly userConnection: unknown;
  readonly parameters: Record<string, unknown>;
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  waitForTask(task: { readonly id: string } | string): void;
  readonly signal: AbortSignal;
}
`;

/** Where one script body or condition expression sits in its generated module. */
export interface Region {
  /** `${processCode}/${elementId}` or `${processCode}/${flowId}`. */
  readonly owner: string;
  readonly kind: "script" | "condition";
  readonly functionName: string;
  /** The script body or condition expression, as the developer wrote it. */
  readonly text: string;
  /** Offset in the module where `text` begins. */
  readonly start: number;
  /** The generated function, from `export` to its closing brace (inclusive). */
  readonly wrapperStart: number;
  readonly wrapperEnd: number;
  /** Offsets of the function body's braces, to check the text did not break out of it. */
  readonly openBrace: number;
  readonly closeBrace: number;
  /** Conditions: the offset of the `;` ending the return statement. */
  readonly semicolon: number;
}

export interface ProcessModule {
  readonly processCode: string;
  readonly text: string;
  readonly regions: readonly Region[];
}

/**
 * The module of one process. `importLines` bring the usings' exports and the platform API into
 * scope; each script becomes `export async function __scriptN(context): Promise<boolean>` with the
 * body verbatim on its own lines, each condition `export function __conditionN(context): boolean`
 * returning the expression.
 */
export function generateProcessModule(
  processCode: string,
  scripts: readonly ProcessScript[],
  conditions: readonly ProcessCondition[],
  importLines: readonly string[],
): ProcessModule {
  let text = `${importLines.join("\n")}\n${CONTEXT_INTERFACE}`;
  const regions: Region[] = [];
  scripts.forEach((script, i) => {
    const functionName = `__script${i}`;
    const wrapperStart = text.length;
    text += `export async function ${functionName}(context: ${CONTEXT_TYPE_NAME}): Promise<boolean> `;
    const openBrace = text.length;
    text += "{\n";
    const start = text.length;
    text += `${script.body}\n`;
    const closeBrace = text.length;
    text += "}";
    regions.push({
      owner: `${processCode}/${script.elementId}`,
      kind: "script",
      functionName,
      text: script.body,
      start,
      wrapperStart,
      wrapperEnd: text.length,
      openBrace,
      closeBrace,
      semicolon: -1,
    });
    text += "\n";
  });
  conditions.forEach((condition, i) => {
    const functionName = `__condition${i}`;
    const wrapperStart = text.length;
    text += `export function ${functionName}(context: ${CONTEXT_TYPE_NAME}): boolean `;
    const openBrace = text.length;
    // The expression must begin on the line of `return` (a line break after it would end the
    // statement), so the white space and comments before it are dropped; offsets still count
    // from the original text.
    const expression = condition.expression;
    const lead = leadingTrivia(expression);
    text += "{\n  return ";
    const start = text.length - lead;
    text += `${expression.slice(lead)}\n  `;
    const semicolon = text.length;
    text += ";\n";
    const closeBrace = text.length;
    text += "}";
    regions.push({
      owner: `${processCode}/${condition.flowId}`,
      kind: "condition",
      functionName,
      text: expression,
      start,
      wrapperStart,
      wrapperEnd: text.length,
      openBrace,
      closeBrace,
      semicolon,
    });
    text += "\n";
  });
  return { processCode, text, regions };
}

/** Specifiers the entry uses; only the entry may import them. */
export const ENTRY_SCHEMA_PREFIX = "$schema:";
export const ENTRY_PROCESS_PREFIX = "$process:";

/**
 * The bundle's entry: imports every schema and process module and exports them as lists
 * (lists, not objects, so no name can collide with object internals).
 */
export function generateEntry(schemas: readonly string[], processes: readonly ProcessModule[]): string {
  const lines: string[] = [];
  schemas.forEach((name, i) => lines.push(`import * as __s${i} from ${JSON.stringify(ENTRY_SCHEMA_PREFIX + name)};`));
  processes.forEach((p, i) => lines.push(`import * as __p${i} from ${JSON.stringify(ENTRY_PROCESS_PREFIX + p.processCode)};`));
  lines.push(`export const modules = [${schemas.map((name, i) => `[${JSON.stringify(name)}, __s${i}]`).join(", ")}];`);
  const scripts: string[] = [];
  const conditions: string[] = [];
  processes.forEach((p, i) => {
    for (const region of p.regions) {
      const id = region.owner.slice(p.processCode.length + 1);
      const entry = `[${JSON.stringify(p.processCode)}, ${JSON.stringify(id)}, __p${i}.${region.functionName}]`;
      (region.kind === "script" ? scripts : conditions).push(entry);
    }
  });
  lines.push(`export const scripts = [${scripts.join(", ")}];`);
  lines.push(`export const conditions = [${conditions.join(", ")}];`);
  return `${lines.join("\n")}\n`;
}

/** How many characters of white space and comments (line and block comments) begin `text`. */
function leadingTrivia(text: string): number {
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text.startsWith("//", i)) {
      const end = text.slice(i).search(/[\n\r\u2028\u2029]/);
      if (end === -1) return text.length;
      i += end;
    } else if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      if (end === -1) return i; // unterminated: TypeScript says so
      i = end + 2;
    } else {
      return i;
    }
  }
}
