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
      const stack = textOf(() => value.stack)?.slice(0, MAX_STACK);
      return {
        name: (textOf(() => value.name) || "Error").slice(0, MAX_NAME),
        message: (textOf(() => value.message) ?? "(its message could not be read)").slice(0, MAX_MESSAGE),
        ...(stack ? { stack } : {}),
      };
    }
    const shown = inspect(value, { depth: 2, breakLength: Infinity, maxStringLength: 500 });
    return { name: "NonErrorThrown", message: `a non-Error value was thrown: ${shown}`.slice(0, MAX_MESSAGE) };
  } catch {
    return { name: "NonErrorThrown", message: "a value was thrown that cannot be described (reading it threw)" };
  }
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
