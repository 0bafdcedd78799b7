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
 * about: a task's outcome, a claim, a shutdown.
 */
export function guardedLogger(logger: Logger): Logger {
  const guard =
    (fn: LogFn): LogFn =>
    (objectOrMessage: object | string, message?: string): void => {
      try {
        if (typeof objectOrMessage === "string") (fn as (message: string) => void).call(logger, objectOrMessage);
        else fn.call(logger, objectOrMessage, message);
      } catch {
        // A logger that cannot log has nowhere to say so.
      }
    };
  return {
    debug: guard(logger.debug),
    info: guard(logger.info),
    warn: guard(logger.warn),
    error: guard(logger.error),
    child(bindings: Record<string, unknown>): Logger {
      try {
        return guardedLogger(logger.child(bindings));
      } catch {
        return guardedLogger(logger);
      }
    },
  };
}
