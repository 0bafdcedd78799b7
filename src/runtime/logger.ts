import { createRequire } from "node:module";
import type { pino as Pino } from "pino";
import { guardedLogger, type Logger } from "../tasks/logger.ts";

const ignore = (): void => undefined;

/** `logger: false`: every line dropped, children included, without building any of them. */
const SILENT: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore, child: () => SILENT };

/** The levels UNDERWAY_LOG_LEVEL may name: pino's, and silent. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/**
 * The level UNDERWAY_LOG_LEVEL names: trimmed, in any case; empty or unset is info (an unset
 * shell variable passed on). Another word is an error that names the variable, rather than
 * pino's own ("default level:verbose must be included in custom levels").
 */
export function logLevelFromEnv(value: string | undefined = process.env.UNDERWAY_LOG_LEVEL): (typeof LOG_LEVELS)[number] {
  const level = (value ?? "").trim().toLowerCase();
  if (level === "") return "info";
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`UNDERWAY_LOG_LEVEL is ${JSON.stringify(value)}: expected one of ${LOG_LEVELS.join(", ")} (unset or empty: info)`);
  }
  return level as (typeof LOG_LEVELS)[number];
}

/** The default logger: pino, JSON lines on stderr, level from UNDERWAY_LOG_LEVEL (default info); the one given, guarded. */
export function createLogger(option: Logger | false | undefined): Logger {
  if (option === false) return SILENT;
  // One given by the application may throw (a broken transport): its lines are dropped then.
  if (option) return guardedLogger(option);
  const level = logLevelFromEnv();
  // Loaded only when it is used: a task thread logs through its worker's logger.
  const { pino } = createRequire(import.meta.url)("pino") as { pino: typeof Pino };
  return pino({ name: "underway", level }, pino.destination(2));
}
