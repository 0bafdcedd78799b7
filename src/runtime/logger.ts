import { pino } from "pino";
import type { Logger } from "../tasks/logger.ts";

/** The default logger: pino, JSON lines on stderr, level from UNDERWAY_LOG_LEVEL (default info). */
export function createLogger(option: Logger | false | undefined): Logger {
  if (option === false) return pino({ level: "silent" });
  if (option) return option;
  return pino({ name: "underway", level: process.env.UNDERWAY_LOG_LEVEL ?? "info" }, pino.destination(2));
}
