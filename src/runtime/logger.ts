import { createRequire } from "node:module";
import type { pino as Pino } from "pino";
import { guardedLogger, type Logger } from "../tasks/logger.ts";

const ignore = (): void => undefined;

/** `logger: false`: every line dropped, children included, without building any of them. */
const SILENT: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore, child: () => SILENT };

/** The default logger: pino, JSON lines on stderr, level from UNDERWAY_LOG_LEVEL (default info); the one given, guarded. */
export function createLogger(option: Logger | false | undefined): Logger {
  if (option === false) return SILENT;
  // One given by the application may throw (a broken transport): its lines are dropped then.
  if (option) return guardedLogger(option);
  // Loaded only when it is used: a task thread logs through its worker's logger.
  const { pino } = createRequire(import.meta.url)("pino") as { pino: typeof Pino };
  return pino({ name: "underway", level: process.env.UNDERWAY_LOG_LEVEL ?? "info" }, pino.destination(2));
}
