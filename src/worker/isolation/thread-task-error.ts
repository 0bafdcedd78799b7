import type { ThrownInfo } from "../../tasks/error-info.ts";
import type { FailureKind } from "./protocol.ts";

/**
 * What a task threw in its thread, as the worker receives it: the name, message and stack of the
 * original, and how the worker treats it (an UnrecoverableTaskError there is final here too).
 */
export class ThreadTaskError extends Error {
  constructor(
    info: ThrownInfo,
    readonly kind: FailureKind,
  ) {
    super(info.message);
    this.name = info.name;
    if (info.stack) this.stack = info.stack;
    else delete this.stack;
  }
}
