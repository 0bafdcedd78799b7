/** Reading values back from either store: SQLite keeps times as ms and booleans as 0/1. */
export function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === "number" || typeof value === "bigint") return new Date(Number(value));
  if (typeof value === "string") return new Date(value);
  return null;
}

export function toBoolean(value: unknown): boolean {
  return value === true || value === 1 || value === 1n || value === "1" || value === "t";
}

/** A unique constraint refused an insert: PostgreSQL's SQLSTATE, SQLite's extended code. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE";
}

const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * The instant of ISO 8601 text: a date ("2026-12-07", midnight UTC) or a date and time with "Z",
 * an offset ("2026-12-07T10:30:00+01:00"), or none (then UTC): the server's time zone plays no
 * part. Null for anything else: loose forms such as "January 5" (which JavaScript reads as a day
 * of 2001), a space for the "T", and dates or times that do not exist ("2026-02-30", which
 * JavaScript moves to March 2; "24:00"; an offset of "+25:00").
 */
export function parseIsoInstant(text: string): Date | null {
  const m = ISO_INSTANT.exec(text);
  if (!m) return null;
  const [, year, month, day, hour, minute, second, zone] = m;
  const date = new Date(Date.UTC(2000, Number(month) - 1, Number(day)));
  date.setUTCFullYear(Number(year));
  if (date.getUTCMonth() !== Number(month) - 1 || date.getUTCDate() !== Number(day)) return null;
  if (Number(hour ?? 0) > 23 || Number(minute ?? 0) > 59 || Number(second ?? 0) > 59) return null;
  if (zone && zone !== "Z" && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59)) return null;
  const parsed = new Date(hour !== undefined && zone === undefined ? `${text}Z` : text);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}
