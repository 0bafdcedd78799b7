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
 * Applies the pending platform migrations in one transaction. Safe when several processes start
 * at once: SQLite's write lock, or an advisory lock on PostgreSQL, makes them take turns.
 */
export async function migratePlatform(store: StorageDriver, db: Kysely<unknown>, migrations: readonly PlatformMigration[]): Promise<void> {
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
