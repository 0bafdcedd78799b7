// Reading and writing BPMN XML with bpmn-moddle, plus our extension. Everything moddle reports
// (a fatal error, or warnings about content it skipped) comes back as problem lines.
import type { BpmnModdle, ModdleElement, ModdleWarning } from "bpmn-moddle";
import { BpmnDefinitionError } from "./bpmn-definition-error.ts";
import { withCharactersPastBmp } from "./character-references.ts";
import { describe, isElement } from "./elements.ts";
import { underwayModdlePackage } from "./underway-moddle.ts";

/** Files above this size (UTF-8 bytes) are refused before parsing. */
export const MAX_BPMN_BYTES = 5 * 1024 * 1024;
/**
 * Namespace declarations (`xmlns`, `xmlns:prefix`) a document may make. A diagram declares a
 * handful on its root; writing one back costs time with the square of the declarations nested in
 * each other (3,000 took half a second, 20,000 about a minute of the server's one thread), and
 * a diagram is written back whenever a user other than an administrator opens it.
 */
export const MAX_NAMESPACE_DECLARATIONS = 100;
const NAMESPACE_DECLARATION = /\sxmlns(?::[^\s=/>]*)?\s*=/g;

/**
 * One instance serves every call: fromXML/toXML keep no state between documents. Loaded when
 * first needed: every task thread imports this module with the public API, and most never read
 * a diagram (bpmn-moddle took 13 ms of a thread's boot).
 */
let moddleLoaded: Promise<BpmnModdle> | null = null;
function moddle(): Promise<BpmnModdle> {
  moddleLoaded ??= import("bpmn-moddle").then(({ BpmnModdle }) => new BpmnModdle({ underway: underwayModdlePackage }));
  return moddleLoaded;
}

export interface ReadResult {
  readonly definitions: ModdleElement;
  /** moddle's warnings as problem lines, in the order moddle met them. */
  readonly warnings: readonly string[];
  /** `${elementId} ${property}` for every reference moddle could not resolve. */
  readonly unresolved: ReadonlySet<string>;
}

/** Parses a whole bpmn:definitions document; throws BpmnDefinitionError if it cannot be read. */
export async function readDefinitions(xml: unknown): Promise<ReadResult> {
  if (typeof xml !== "string") {
    throw new BpmnDefinitionError([`the document must be a string of XML, not ${xml === null ? "null" : typeof xml}`]);
  }
  const bytes = Buffer.byteLength(xml, "utf8");
  if (bytes > MAX_BPMN_BYTES) {
    throw new BpmnDefinitionError([`the document is ${bytes} bytes; the limit is ${MAX_BPMN_BYTES} bytes (5 MB)`]);
  }
  if (xml.trim() === "") throw new BpmnDefinitionError(["the document is empty"]);
  const declarations = xml.match(NAMESPACE_DECLARATION)?.length ?? 0;
  if (declarations > MAX_NAMESPACE_DECLARATIONS) {
    throw new BpmnDefinitionError([
      `the document makes ${declarations} XML namespace declarations (xmlns); the limit is ${MAX_NAMESPACE_DECLARATIONS}: declare each namespace once, on the root element`,
    ]);
  }
  if (DOCTYPE_IN_PROLOG.test(xml)) {
    // BPMN files never need a DTD; refusing one keeps entity tricks out of the reader.
    throw new BpmnDefinitionError(["the document has a <!DOCTYPE>; BPMN files must not declare one"]);
  }
  // After the checks above, which count the document as given: references to characters past
  // U+FFFF (`&#x1F600;`), which saxen would read wrongly, are written as the characters.
  const readable = withCharactersPastBmp(xml);
  let result;
  try {
    result = await (await moddle()).fromXML(readable);
  } catch (error) {
    throw new BpmnDefinitionError(fatalProblems(error), { cause: error });
  }
  const unresolved = new Set<string>();
  for (const warning of result.warnings) {
    const id = warning.element ? warning.element["id"] : undefined;
    if (warning.message.startsWith("unresolved reference") && typeof id === "string" && warning.property) {
      unresolved.add(`${id} ${localName(warning.property)}`);
    }
  }
  return { definitions: result.rootElement, warnings: result.warnings.map(warningProblem), unresolved };
}

/**
 * Writes the model back as XML. `format` indents each element by its depth, which for a deeply
 * nested document makes the text grow with the square of its depth: pass false for documents
 * this process did not check itself.
 */
export async function writeDefinitions(definitions: ModdleElement, options: { readonly format?: boolean } = {}): Promise<string> {
  const { xml } = await (await moddle()).toXML(definitions, { format: options.format ?? true });
  return xml;
}

const UNPARSABLE = /^unparsable content(?: ([\s\S]*?))? detected\n\tline: (\d+)\n\tcolumn: (\d+)\n\tnested error: ([\s\S]*)$/;
/** A DOCTYPE after the XML declaration, comments and processing instructions, before the root. */
const DOCTYPE_IN_PROLOG = /^\uFEFF?\s*(?:(?:<\?[\s\S]*?\?>|<!--[\s\S]*?-->)\s*)*<!DOCTYPE/i;

function fatalProblems(error: unknown): string[] {
  const message = error instanceof Error ? error.message : String(error);
  const carried: unknown = error instanceof Error ? (error as Error & { warnings?: unknown }).warnings : undefined;
  const warnings = Array.isArray(carried) ? carried.filter(isWarning) : [];
  const problems = warnings.map(warningProblem);
  const unparsable = UNPARSABLE.exec(message);
  if (unparsable) {
    const [, content = "", line = "0", column = "0", reason = ""] = unparsable;
    problems.push(`malformed XML at ${position(line, column)}: ${reason} (${excerpt(content)})`);
  } else if (message.startsWith("failed to parse document as")) {
    problems.push("the document is not BPMN 2.0: its root element must be bpmn:definitions");
  } else {
    problems.push(`cannot read the XML: ${message}`);
  }
  return dedupe(problems);
}

function isWarning(value: unknown): value is ModdleWarning {
  return typeof value === "object" && value !== null && typeof (value as { message?: unknown }).message === "string";
}

function warningProblem(warning: ModdleWarning): string {
  const unparsable = UNPARSABLE.exec(warning.message);
  if (unparsable) {
    const [, content = "", line = "0", column = "0", reason = ""] = unparsable;
    return `unreadable content ${excerpt(content)} at ${position(line, column)}: ${reason}`;
  }
  const owner = isElement(warning.element) ? describe(warning.element) : "an element";
  if (warning.message.startsWith("unresolved reference") && warning.property) {
    return `${owner}: ${localName(warning.property)} refers to missing element "${String(warning.value)}"`;
  }
  if (warning.message.startsWith("unknown attribute") && warning.property) {
    return `${owner}: unknown attribute ${warning.property}="${String(warning.value)}"`;
  }
  return warning.message.replace(/\n\t/g, ", ");
}

/** moddle counts lines and columns from 0; editors count from 1. */
function position(line: string, column: string): string {
  return `line ${Number(line) + 1}, column ${Number(column) + 1}`;
}

function excerpt(content: string): string {
  const flat = content.replace(/\s+/g, " ").trim();
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

function localName(property: string): string {
  return property.slice(property.indexOf(":") + 1);
}

function dedupe(lines: readonly string[]): string[] {
  return [...new Set(lines)];
}
