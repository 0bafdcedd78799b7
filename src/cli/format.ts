import Table from "cli-table3";
import { InvalidArgumentError, type Command } from "commander";
import { isIPv6 } from "node:net";
import type { TaskInfo } from "../tasks/types.ts";

/**
 * An option's integer from `min` to `max`, in decimal digits only: Number() reads "" and " " as 0
 * (an unset variable would be port 0), "0x10" as 16 and "1e3" as 1000. `what` names the
 * expected value in the error ("an integer", "whole minutes").
 */
export function intOption(min: number, max = Number.MAX_SAFE_INTEGER, what = "an integer") {
  return (value: string): number => {
    const n = /^\s*-?[0-9]+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const expected = max === Number.MAX_SAFE_INTEGER ? `expected ${what} >= ${min}` : `expected ${what} from ${min} to ${max}`;
      throw new InvalidArgumentError(`${expected}, got ${value.trim() === "" ? "an empty value" : JSON.stringify(value)}`);
    }
    return n;
  };
}

/** The host as a URL writes it: an IPv6 address in brackets (`http://[::1]:3000`), its zone's % escaped. */
export function urlHost(host: string): string {
  return isIPv6(host) ? `[${host.replace(/%/g, "%25")}]` : host;
}

/**
 * Text from the store (task names, error messages, progress messages...) as a terminal may show
 * it: control characters (C0, DEL, C1: escape sequences, a carriage return, a bell) and the
 * characters that reorder text on screen are written as escapes, so stored text can neither
 * drive the terminal nor fake lines of output.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    if (c === "\r") return "\\r";
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** A time as the tables show it; one a row changed by hand made unreadable is said so, not thrown over. */
export const time = (d: Date | null): string =>
  !d ? "" : Number.isNaN(d.getTime()) ? "(unreadable)" : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

export function tasksTable(tasks: readonly TaskInfo[]): string {
  const table = new Table({
    head: ["id", "name", "state", "attempt", "queue", "user", "created", "finished", "last error"],
    style: { head: [], border: [] },
  });
  for (const t of tasks) {
    table.push([
      t.id,
      printable(t.name),
      t.state,
      `${t.attempt}/${t.maxAttempts}`,
      printable(t.queue),
      printable(t.initiator?.userId ?? ""),
      time(t.createdAt),
      time(t.finishedAt),
      t.lastError ? truncate(printable(`${t.lastError.name}: ${t.lastError.message}`), 60) : "",
    ]);
  }
  return table.toString();
}

export function taskDetails(t: TaskInfo): string {
  const lines = [
    `task ${t.id}: ${printable(t.name)}`,
    `  state      ${t.state} (attempt ${t.attempt} of ${t.maxAttempts})`,
    `  queue      ${printable(t.queue)}, priority ${t.priority}`,
    `  user       ${t.initiator ? printable(t.initiator.userId) : "(none)"}${t.withUserConnection ? " (with user connection)" : ""}`,
    `  created    ${time(t.createdAt)}`,
    `  run at     ${time(t.runAt)}`,
    `  started    ${time(t.startedAt)}`,
    `  finished   ${time(t.finishedAt)}`,
    `  worker     ${printable(t.workerId ?? "")}`,
    `  timeout    ${t.timeoutMs ? `${t.timeoutMs} ms` : "none"}`,
  ];
  if (t.progress !== null) lines.push(`  progress   ${Math.round(t.progress * 100)}%${t.progressMessage ? ` ${printable(t.progressMessage)}` : ""}`);
  for (const e of t.errors) {
    lines.push(`  error (attempt ${e.attempt}, ${time(e.at)}): ${printable(`${e.name}: ${e.message}`)}`);
    // The frames only: the stack's first lines repeat the message, however many lines it has.
    if (e.stack) lines.push(...e.stack.split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 5).map((l) => `      ${printable(l.trim())}`));
  }
  return lines.join("\n");
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A filter option's text: empty text is refused (an unset shell variable would match every task). */
export function nonEmpty(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("expected a value; an empty one would match every task");
  return value;
}

/** A value as a POSIX shell reads it back unchanged. */
function shellWord(value: string): string {
  return /^[\w./:=,@+-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * The command line of the next page: the same command with the filters given, from `before`
 * (the database too when it was given on the command line and holds no password).
 */
export function nextPageHint(command: string, options: readonly (readonly [string, string | number | readonly string[] | undefined])[], before: string): string {
  const words = [`underway ${command}`];
  for (const [flag, value] of options) {
    if (value === undefined) continue;
    words.push(flag, shellWord(printable(Array.isArray(value) ? value.join(",") : String(value))));
  }
  words.push("--before", before);
  return `more: ${words.join(" ")}`;
}

/** The --db option for a command line shown back: when it was typed, and holds no password. */
export function dbWord(command: Command, db: string): (readonly [string, string])[] {
  return command.getOptionValueSource("db") === "cli" && !/:\/\/[^/@]*:[^/@]*@/.test(db) && !/[?&]password=/i.test(db) ? [["--db", db]] : [];
}
