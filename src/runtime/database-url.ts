import { SqliteDriver } from "../store/sqlite/driver.ts";
import type { StorageDriver } from "../store/driver.ts";

export interface DriverSettings {
  readonly durability?: "normal" | "full";
}

/** The default embedded database, relative to the working directory. */
export const DEFAULT_DATABASE = "./data/underway.db";

/**
 * Opens the store a database setting names: a SQLite file path, a `sqlite:` URL
 * (`sqlite:./data/app.db`, `sqlite:///var/lib/app.db`, `sqlite::memory:`), or a driver instance.
 */
export function openDriver(db: string | StorageDriver, settings: DriverSettings = {}): StorageDriver {
  if (typeof db !== "string") return db;
  const text = db.trim();
  if (text === "") throw new Error("the database setting is empty: give a SQLite file path or a sqlite: URL");
  if (/^postgres(ql)?:\/\//i.test(text)) {
    throw new Error("PostgreSQL URLs are not supported by this version of underway yet; use a SQLite file path");
  }
  let path = text;
  if (/^sqlite:/i.test(text)) {
    path = text.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2); // sqlite:///abs/path -> /abs/path
    if (path === "") throw new Error(`the SQLite URL ${JSON.stringify(db)} names no file`);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new Error(`unsupported database URL scheme in ${JSON.stringify(text.split("://")[0] + "://...")}: use a SQLite file path or a sqlite: URL`);
  }
  return new SqliteDriver({ path, ...(settings.durability ? { durability: settings.durability } : {}) });
}
