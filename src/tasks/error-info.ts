import { inspect } from "node:util";

/** How a thrown value is stored on a task: whatever was thrown, even a non-Error. */
export interface ThrownInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

const MAX_MESSAGE = 4_000;
const MAX_STACK = 16_000;
const MAX_NAME = 200;

export function describeThrown(value: unknown): ThrownInfo {
  // Any read may throw (a getter, a revoked proxy) or give a non-string: neither may escape.
  try {
    if (value instanceof Error) {
      // Cut first, then made storable: a cut can split a surrogate pair.
      const stack = textOf(() => value.stack);
      return {
        name: storableText((textOf(() => value.name) || "Error").slice(0, MAX_NAME)),
        message: storableText((textOf(() => value.message) ?? "(its message could not be read)").slice(0, MAX_MESSAGE)),
        ...(stack ? { stack: storableText(stack.slice(0, MAX_STACK)) } : {}),
      };
    }
    const shown = inspect(value, { depth: 2, breakLength: Infinity, maxStringLength: 500 });
    return { name: "NonErrorThrown", message: storableText(`a non-Error value was thrown: ${shown}`.slice(0, MAX_MESSAGE)) };
  } catch {
    return { name: "NonErrorThrown", message: "a value was thrown that cannot be described (reading it threw)" };
  }
}

/**
 * Text every store keeps as it is: NUL (which PostgreSQL refuses in text and jsonb) and a lone
 * surrogate (which it refuses in jsonb) become U+FFFD. An error or a progress message with one
 * would otherwise fail to be stored, and the attempt's real outcome would be lost.
 */
export function storableText(text: string): string {
  return text.replaceAll("\0", "\uFFFD").toWellFormed();
}

/** Whether every store keeps the text as it is: no NUL, no lone surrogate (see storableText). */
export function isStorableText(text: string): boolean {
  return !text.includes("\0") && text.isWellFormed();
}

/** A property as text: a string as it is, a number or boolean as its text; otherwise, or when reading it throws, undefined. */
function textOf(read: () => unknown): string | undefined {
  try {
    const value = read();
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
    return undefined;
  } catch {
    return undefined;
  }
}
