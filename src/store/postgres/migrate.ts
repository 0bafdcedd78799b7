/**
 * The migration runner: applies the numbered, forward-only migrations of ./migrations/ to one
 * schema. Several processes may start at once: they take the same transaction-scoped advisory
 * lock, so the first migrates and the others find the work done.
 */
import type { PoolClient } from "pg";
import { loadMigrations, type Migration } from "../migrations.ts";

/** In the SQL files, stands for the driver's schema, quoted. */
export const SCHEMA_PLACEHOLDER = "{{schema}}";

const MIGRATIONS: readonly Migration[] = loadMigrations(new URL("./migrations/", import.meta.url));
const LATEST = Math.max(0, ...MIGRATIONS.map((m) => m.version));

export interface MigrateTarget {
  /** The schema's name, unquoted: the advisory lock's key and to_regclass's argument. */
  readonly schema: string;
  /** The schema quoted, for SQL. */
  readonly quoted: string;
  /** For errors. */
  readonly description: string;
  /** The clock offset, ms, for applied_at. */
  readonly clockOffsetMs: number;
}

export async function migrateSchema(client: PoolClient, target: MigrateTarget): Promise<void> {
  const table = `${target.quoted}.underway_migrations`;
  // Up to date: no lock and no DDL, so a role without CREATE rights can start too.
  if ((await appliedVersion(client, target)) === LATEST) return;

  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`underway.migrate:${target.schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${target.quoted}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`,
    );
    const done = new Set(
      (await client.query<{ version: number }>(`SELECT version FROM ${table}`)).rows.map((r) => r.version),
    );
    const latest = Math.max(0, ...done);
    if (latest > LATEST) {
      throw new Error(
        `the database ${target.description} is at schema version ${latest}, newer than this underway (${LATEST}); upgrade underway`,
      );
    }
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      // No parameters: the simple protocol runs a file of several statements at once.
      await client.query(m.sql.split(SCHEMA_PLACEHOLDER).join(target.quoted));
      await client.query(
        `INSERT INTO ${table} (version, name, applied_at)
         VALUES ($1, $2, date_trunc('milliseconds', now()) + $3::float8 * interval '1 millisecond')`,
        [m.version, m.name, target.clockOffsetMs],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/** Whether the store's migrations table exists in the schema (quoted): whether it was ever created. */
export async function migrationsTableExists(client: Pick<PoolClient, "query">, quotedSchema: string): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>("SELECT to_regclass($1) IS NOT NULL AS found", [`${quotedSchema}.underway_migrations`]);
  return rows[0]?.found === true;
}

/** Whether every migration is applied (throws when the store is newer than this underway). */
export async function schemaIsCurrent(client: PoolClient, target: MigrateTarget): Promise<boolean> {
  return (await appliedVersion(client, target)) === LATEST;
}

/** The highest applied version, 0 when the schema or its migrations table does not exist. */
async function appliedVersion(client: PoolClient, target: MigrateTarget): Promise<number> {
  if (!(await migrationsTableExists(client, target.quoted))) return 0;
  const result = await client.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${target.quoted}.underway_migrations`,
  );
  const version = result.rows[0]?.version ?? 0;
  if (version > LATEST) {
    throw new Error(
      `the database ${target.description} is at schema version ${version}, newer than this underway (${LATEST}); upgrade underway`,
    );
  }
  return version;
}
