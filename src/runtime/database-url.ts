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
}

/** The default embedded database, relative to the working directory. */
export const DEFAULT_DATABASE = "./data/underway.db";

/**
 * Opens the store a database setting names: a SQLite file path, a `sqlite:` URL
 * (`sqlite:./data/app.db`, `sqlite:///var/lib/app.db`, `sqlite::memory:`), a `postgres://` URL
 * (`postgres://user@host:5432/db?schema=underway`), or a driver instance.
 */
export function openDriver(db: string | StorageDriver, settings: DriverSettings = {}): StorageDriver {
  if (typeof db !== "string") return db;
  const text = db.trim();
  if (text === "") throw new Error("the database setting is empty: give a SQLite file path or a sqlite: URL");
  if (/^postgres(ql)?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new Error("the PostgreSQL URL is not a valid URL: expected postgres://user:password@host:port/database");
    }
    const schema = url.searchParams.get("schema") ?? settings.schema;
    url.searchParams.delete("schema");
    return new PostgresDriver({
      connectionString: url.toString(),
      ...(schema ? { schema } : {}),
      ...(settings.watch === false ? { watch: false } : {}),
      ...(settings.warmConnections !== undefined ? { warmConnections: settings.warmConnections } : {}),
    });
  }
  let path = text;
  if (/^sqlite:/i.test(text)) {
    path = text.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2); // sqlite:///abs/path -> /abs/path
    if (path === "") throw new Error(`the SQLite URL ${JSON.stringify(db)} names no file`);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new Error(`unsupported database URL scheme in ${JSON.stringify(text.split("://")[0] + "://...")}: use a SQLite file path, a sqlite: URL or a postgres:// URL`);
  }
  return new SqliteDriver({
    path,
    ...(settings.durability ? { durability: settings.durability } : {}),
    ...(settings.watch === false ? { watch: false } : {}),
  });
}
