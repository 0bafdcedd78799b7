/** The messages between a worker and the threads its isolated tasks run in. */
import type { ThrownInfo } from "../../tasks/error-info.ts";
import type { Initiator } from "../../tasks/types.ts";

/** How the worker classifies a failure that happened in a thread. */
export type FailureKind = "unrecoverable" | "security" | "deserialization" | "interrupted" | "other";

/** One attempt, as the thread receives it; the parameters are decoded in the thread. */
export interface ThreadRun {
  readonly id: string;
  readonly name: string;
  /** The module that exports the class, when the class is not a package's. */
  readonly module: string | null;
  readonly parameters: Uint8Array;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly initiator: Initiator | null;
  readonly withUserConnection: boolean;
}

export type ToThread =
  /**
   * `after`: the attempt starts once attempt `after` of this thread has ended, not at once (a
   * chain of short attempts that share one slot, see ThreadPool.runChain); 0 or absent: at once.
   */
  | { readonly t: "run"; readonly runId: number; readonly run: ThreadRun; readonly after?: number }
  | { readonly t: "abort"; readonly runId: number; readonly reason: ThrownInfo; readonly kind: FailureKind }
  /** Are you there? A thread that does not answer is running synchronously. */
  | { readonly t: "ping" }
  /** Several of the above, in order: what one turn of the worker's event loop sent (one wake-up of the thread). */
  | { readonly t: "many"; readonly messages: readonly ToThread[] }
  /**
   * What one turn sent, with its attempts packed (see packRuns): the attempts first, then
   * `then` in order (an abort in it only ever names an attempt sent before it).
   */
  | { readonly t: "packed"; readonly runs: PackedRuns; readonly then: readonly ToThread[] };

/**
 * Attempts as the structured clone carries them fastest: one array of fields per attempt (an
 * object would carry every property name with every attempt) and all their parameters in one
 * buffer (a buffer each costs an allocation on both sides and dominates the copy).
 */
export interface PackedRuns {
  /** Per attempt: runId, id, name, module, end of its parameters in `bytes`, attempt, maxAttempts, initiator, withUserConnection, after. */
  readonly fields: readonly PackedRunFields[];
  readonly bytes: Uint8Array;
}

export type PackedRunFields = readonly [number, string, string, string | null, number, number, number, Initiator | null, boolean, number];

/** Packs "run" messages (their parameters copied into one buffer). */
export function packRuns(runs: readonly { readonly runId: number; readonly run: ThreadRun; readonly after?: number }[]): PackedRuns {
  let size = 0;
  for (const { run } of runs) size += run.parameters.byteLength;
  const bytes = new Uint8Array(size);
  const fields: PackedRunFields[] = [];
  let end = 0;
  for (const { runId, run, after } of runs) {
    bytes.set(run.parameters, end);
    end += run.parameters.byteLength;
    fields.push([runId, run.id, run.name, run.module, end, run.attempt, run.maxAttempts, run.initiator, run.withUserConnection, after ?? 0]);
  }
  return { fields, bytes };
}

/** The attempts of packRuns, in order; each one's parameters a view of the shared buffer, and its `after` (0: none). */
export function unpackRuns(packed: PackedRuns, each: (runId: number, run: ThreadRun, after: number) => void): void {
  let start = 0;
  for (const [runId, id, name, module, end, attempt, maxAttempts, initiator, withUserConnection, after] of packed.fields) {
    each(runId, { id, name, module, parameters: packed.bytes.subarray(start, end), attempt, maxAttempts, initiator, withUserConnection }, after);
    start = end;
  }
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export type FromThread =
  /** `tid`: the thread's id in the OS (Linux), so the worker can lower its priority; null elsewhere. */
  | { readonly t: "ready"; readonly tid: number | null }
  | { readonly t: "pong" }
  | { readonly t: "progress"; readonly runId: number; readonly fraction: number; readonly message: string | null }
  | { readonly t: "log"; readonly runId: number | null; readonly level: LogLevel; readonly bindings: Record<string, unknown>; readonly message: string }
  | { readonly t: "abortAck"; readonly runId: number }
  /** An attempt sent with `after` started (its predecessor ended): reported before anything else of its turn. */
  | { readonly t: "started"; readonly runId: number }
  /** `result`: what run returned, encoded in the thread (absent when it returned nothing). */
  | { readonly t: "done"; readonly runId: number; readonly ms: number; readonly ok: true; readonly result?: Uint8Array }
  | { readonly t: "done"; readonly runId: number; readonly ms: number; readonly ok: false; readonly error: ThrownInfo; readonly kind: FailureKind }
  /** Several of the above, in order: what one turn of the thread's event loop sent. */
  | { readonly t: "many"; readonly messages: readonly FromThread[] }
  /**
   * What one turn sent, with the attempts that succeeded and returned nothing packed: the chained
   * attempts that started (`started`, see "started") first, then `then`, in order, then those
   * (`runIds[i]` ran `ms[i]`). A run's own earlier messages (its progress) are in `then` or in an
   * earlier message, so they still come before its end.
   */
  | {
      readonly t: "packed";
      readonly started: readonly number[];
      readonly then: readonly FromThread[];
      readonly runIds: readonly number[];
      readonly ms: readonly number[];
    };

const LOG_LEVELS: ReadonlySet<unknown> = new Set(["debug", "info", "warn", "error"]);
const FAILURE_KINDS: ReadonlySet<unknown> = new Set(["unrecoverable", "security", "deserialization", "interrupted", "other"]);

const isRunId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;
const isNumberArray = (value: unknown, check: (item: unknown) => boolean): boolean => Array.isArray(value) && value.every(check);
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;

function isThrownInfo(value: unknown): boolean {
  return isObject(value) && typeof value.name === "string" && typeof value.message === "string" && (value.stack === undefined || typeof value.stack === "string");
}

/**
 * Whether a message from a thread is one of FromThread, field by field. The worker acts on no
 * other: a thread that sends one is stopped (see PoolThread), never the worker's process.
 */
export function isThreadMessage(message: unknown, nested = false): message is FromThread {
  if (!isObject(message)) return false;
  switch (message.t) {
    case "ready":
      return message.tid === null || (Number.isSafeInteger(message.tid) && (message.tid as number) > 0);
    case "pong":
      return true;
    case "progress":
      return isRunId(message.runId) && typeof message.fraction === "number" && (message.message === null || typeof message.message === "string");
    case "log":
      return (message.runId === null || isRunId(message.runId)) && LOG_LEVELS.has(message.level) && isObject(message.bindings) && typeof message.message === "string";
    case "abortAck":
    case "started":
      return isRunId(message.runId);
    case "done":
      if (!isRunId(message.runId) || typeof message.ms !== "number") return false;
      if (message.ok === true) return message.result === undefined || message.result instanceof Uint8Array;
      return message.ok === false && isThrownInfo(message.error) && FAILURE_KINDS.has(message.kind);
    case "many":
      return !nested && Array.isArray(message.messages) && message.messages.every((m: unknown) => isThreadMessage(m, true));
    case "packed":
      return (
        !nested &&
        isNumberArray(message.started, isRunId) &&
        Array.isArray(message.then) &&
        message.then.every((m: unknown) => isThreadMessage(m, true)) &&
        isNumberArray(message.runIds, isRunId) &&
        isNumberArray(message.ms, (ms) => typeof ms === "number") &&
        (message.ms as unknown[]).length === (message.runIds as unknown[]).length
      );
    default:
      return false;
  }
}

/** A short description of an unknown message, for the reason a thread was stopped. */
export function describeMessage(message: unknown): string {
  if (!isObject(message)) return message === null ? "null" : typeof message;
  return typeof message.t === "string" ? `a malformed "${message.t.slice(0, 40)}" message` : "an object without a known type";
}
