import { inspect } from "node:util";

/** How a thrown value is stored on a task: whatever was thrown, even a non-Error. */
export interface ThrownInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

const MAX_MESSAGE = 4_000;
const MAX_STACK = 16_000;

export function describeThrown(value: unknown): ThrownInfo {
  if (value instanceof Error) {
    const stack = typeof value.stack === "string" ? value.stack.slice(0, MAX_STACK) : undefined;
    return { name: value.name || "Error", message: String(value.message).slice(0, MAX_MESSAGE), ...(stack ? { stack } : {}) };
  }
  const shown = inspect(value, { depth: 2, breakLength: Infinity, maxStringLength: 500 });
  return { name: "NonErrorThrown", message: `a non-Error value was thrown: ${shown}`.slice(0, MAX_MESSAGE) };
}
