import type { Kysely } from "kysely";
import { sql } from "./kysely-module.ts";
import type { StorageDriver } from "../../store/driver.ts";

/** A numbered, forward-only migration of the platform's tables, written with Kysely's schema builder. */
export interface PlatformMigration {
  readonly version: number;
  readonly name: string;
  up(db: Kysely<unknown>, dialect: StorageDriver["dialect"]): Promise<void>;
}

/**
 * The versions applied, read without a lock or DDL; null when the migrations table is missing.
 * On PostgreSQL the table is looked up in the store's schema itself: the search path also holds
 * public, whose table (a platform installed there) must not answer for this schema.
 */
async function appliedVersions(store: StorageDriver, db: Kysely<unknown>): Promise<Set<number> | null> {
  let table;
  if (store.dialect === "postgres") {
    const schema = store.schema ?? "public";
    const found = await sql<{ present: boolean }>`SELECT to_regclass(format('%I.%I', ${schema}::text, 'UnderwayPlatformMigrations')) IS NOT NULL AS present`.execute(db);
    if (!found.rows[0]?.present) return null;
    table = sql.table(`${schema}.UnderwayPlatformMigrations`);
  } else {
    const found = await sql`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'UnderwayPlatformMigrations'`.execute(db);
    if (found.rows.length === 0) return null;
    table = sql.table("UnderwayPlatformMigrations");
  }
  const rows = (await sql<{ Version: number }>`SELECT "Version" FROM ${table}`.execute(db)).rows;
  return new Set(rows.map((r) => Number(r.Version)));
}

/**
 * Applies the pending platform migrations in one transaction. Safe when several processes start
 * at once: SQLite's write lock, or an advisory lock on PostgreSQL, makes them take turns. Up to
 * date, it takes no lock and runs no DDL, so a role without CREATE rights on the schema can start
 * a platform whose tables are in place.
 */
export async function migratePlatform(store: StorageDriver, db: Kysely<unknown>, migrations: readonly PlatformMigration[]): Promise<void> {
  const applied = await appliedVersions(store, db);
  if (applied && migrations.every((m) => applied.has(m.version)) && Math.max(0, ...applied) <= Math.max(0, ...migrations.map((m) => m.version))) return;
  await store.transaction(async () => {
    if (store.dialect === "postgres") {
      await sql`SELECT pg_advisory_xact_lock(hashtext(${`underway-platform:${store.schema ?? ""}`}))`.execute(db);
    }
    await db.schema
      .createTable("UnderwayPlatformMigrations")
      .ifNotExists()
      .addColumn("Version", "integer", (c) => c.primaryKey())
      .addColumn("Name", "text", (c) => c.notNull())
      .execute();
    const done = new Set(
      (await sql<{ Version: number }>`SELECT "Version" FROM ${sql.table("UnderwayPlatformMigrations")}`.execute(db)).rows.map((r) =>
        Number(r.Version),
      ),
    );
    const known = Math.max(0, ...migrations.map((m) => m.version));
    const latest = Math.max(0, ...done);
    if (latest > known) {
      throw new Error(`the platform tables are at version ${latest}, newer than this underway (${known}); upgrade underway`);
    }
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await m.up(db, store.dialect);
      await sql`INSERT INTO ${sql.table("UnderwayPlatformMigrations")} ("Version", "Name") VALUES (${m.version}, ${m.name})`.execute(db);
    }
  });
}
