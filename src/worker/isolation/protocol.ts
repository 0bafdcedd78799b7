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
  | { readonly t: "run"; readonly runId: number; readonly run: ThreadRun }
  | { readonly t: "abort"; readonly runId: number; readonly reason: ThrownInfo; readonly kind: FailureKind }
  /** Are you there? A thread that does not answer is running synchronously. */
  | { readonly t: "ping" }
  /** Several of the above, in order: what one turn of the worker's event loop sent (one wake-up of the thread). */
  | { readonly t: "many"; readonly messages: readonly ToThread[] };

export type LogLevel = "debug" | "info" | "warn" | "error";

export type FromThread =
  /** `tid`: the thread's id in the OS (Linux), so the worker can lower its priority; null elsewhere. */
  | { readonly t: "ready"; readonly tid: number | null }
  | { readonly t: "pong" }
  | { readonly t: "progress"; readonly runId: number; readonly fraction: number; readonly message: string | null }
  | { readonly t: "log"; readonly runId: number | null; readonly level: LogLevel; readonly bindings: Record<string, unknown>; readonly message: string }
  | { readonly t: "abortAck"; readonly runId: number }
  /** `result`: what run returned, encoded in the thread (absent when it returned nothing). */
  | { readonly t: "done"; readonly runId: number; readonly ms: number; readonly ok: true; readonly result?: Uint8Array }
  | { readonly t: "done"; readonly runId: number; readonly ms: number; readonly ok: false; readonly error: ThrownInfo; readonly kind: FailureKind }
  /** Several of the above, in order: what one turn of the thread's event loop sent. */
  | { readonly t: "many"; readonly messages: readonly FromThread[] };
