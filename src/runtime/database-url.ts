import { PostgresDriver } from "../store/postgres/driver.ts";
import { SqliteDriver } from "../store/sqlite/driver.ts";
import type { StorageDriver } from "../store/driver.ts";

export interface DriverSettings {
  readonly durability?: "normal" | "full";
  /** PostgreSQL schema of the store's tables. Default "underway" (or `?schema=` in the URL). */
  readonly schema?: string;
  /**
   * Wake-ups when another process stores work (a LISTEN connection, a watch on the SQLite file's
   * folder). Default true; false for a store with no worker to wake.
   */
  readonly watch?: boolean;
  /** PostgreSQL: connections opened and readied at the start and kept open (PostgresDriverOptions.warmConnections). */
  readonly warmConnections?: number;
  /** SQLite: open an existing file read-only and change nothing in it (SqliteDriverOptions.lookOnly). */
  readonly lookOnly?: boolean;
}

/** The default embedded database, relative to the working directory. */
export const DEFAULT_DATABASE = "./data/underway.db";

/**
 * Opens the store a database setting names: a SQLite file path, a `sqlite:` URL
 * (`sqlite:./data/app.db`, `sqlite:///var/lib/app.db`, `sqlite::memory:`), a `postgres://` URL
 * (`postgres://user@host:5432/db?schema=underway`), or a driver instance.
 */
export function openDriver(db: string | StorageDriver, settings: DriverSettings = {}): StorageDriver {
  if (typeof db !== "string") {
    const driver = db as Partial<StorageDriver> | null | undefined;
    if (typeof driver === "object" && driver !== null && (driver.dialect === "sqlite" || driver.dialect === "postgres") && typeof driver.migrate === "function") return db;
    throw new TypeError(
      `db must be a SQLite file path, a sqlite: or postgres:// URL, or a store driver; got ${db === undefined ? "undefined (an unset environment variable, say)" : db === null ? "null" : typeof db}`,
    );
  }
  const text = db.trim();
  if (text === "") throw new Error("the database setting is empty: give a SQLite file path or a sqlite: URL");
  if (isPostgresUrl(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new Error("the PostgreSQL URL is not a valid URL: expected postgres://user:password@host:port/database");
    }
    const given = url.searchParams.get("schema");
    if (given !== null && given.trim() === "") throw new Error("the PostgreSQL URL's schema parameter is empty: name a schema, or leave the parameter out for the default");
    const schema = given ?? settings.schema;
    url.searchParams.delete("schema");
    return new PostgresDriver({
      connectionString: url.toString(),
      ...(schema ? { schema } : {}),
      ...(settings.watch === false ? { watch: false } : {}),
      ...(settings.warmConnections !== undefined ? { warmConnections: settings.warmConnections } : {}),
    });
  }
  const path = sqlitePathOf(text);
  return new SqliteDriver({
    path,
    ...(settings.durability ? { durability: settings.durability } : {}),
    ...(settings.watch === false ? { watch: false } : {}),
    ...(settings.lookOnly ? { lookOnly: true } : {}),
  });
}

/** Whether a database setting is a PostgreSQL URL (`postgres://`, `postgresql://`). */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text);
}

/**
 * The SQLite file a database setting that is not a PostgreSQL URL names (`:memory:` for an
 * in-memory database). A setting that looks like a URL of another scheme is refused rather than
 * taken for a file name: `postgres:/host/db` (one slash) would otherwise create a SQLite file
 * under a folder named `postgres:`.
 */
export function sqlitePathOf(text: string): string {
  if (/^sqlite:/i.test(text)) {
    let path = text.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2); // sqlite:///abs/path -> /abs/path
    if (path === "") throw new Error(`the SQLite URL ${JSON.stringify(text)} names no file`);
    if (path.includes("?")) throw new Error(`the SQLite URL ${JSON.stringify(text)} has query parameters; a sqlite: URL names a file and takes none`);
    return path;
  }
  // A scheme of two letters or more (a one-letter prefix is a Windows drive: C:\data\app.db).
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(text);
  if (scheme) {
    throw new Error(
      `unsupported database URL scheme ${JSON.stringify(`${scheme[1]}:`)}: use a SQLite file path, a sqlite: URL or a postgres:// URL ` +
        `(a PostgreSQL URL begins postgres://; a file whose name holds a colon is named from ./)`,
    );
  }
  return text;
}
