/** The logging surface tasks and the runtime use: pino's, so a pino logger fits as it is. */
export interface LogFn {
  (message: string): void;
  (object: object, message?: string): void;
}

export interface Logger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

/**
 * The logger given, made safe to call: a line its methods fail to write (a broken transport, a
 * serializer that throws) is dropped, rather than the failure breaking what was being logged
 * about: a task's outcome, a claim, a shutdown. Each method is looked up on the logger at every
 * call, not once: pino replaces its methods when its level changes (those below it become
 * no-ops), so the application may turn logging up or down while the runtime runs.
 */
export function guardedLogger(logger: Logger): Logger {
  const guard =
    (level: "debug" | "info" | "warn" | "error"): LogFn =>
    (objectOrMessage: object | string, message?: string): void => {
      try {
        if (typeof objectOrMessage === "string") logger[level](objectOrMessage);
        else logger[level](objectOrMessage, message);
      } catch {
        // A logger that cannot log has nowhere to say so.
      }
    };
  return {
    debug: guard("debug"),
    info: guard("info"),
    warn: guard("warn"),
    error: guard("error"),
    child(bindings: Record<string, unknown>): Logger {
      try {
        return guardedLogger(logger.child(bindings));
      } catch {
        return guardedLogger(logger);
      }
    },
  };
}
