/**
 * Runtimes of issue #9's tests on both stores: a SQLite file, or a PostgreSQL schema of their own.
 * Tasks run on the worker's event loop (isolation "none"): these tests are about the queue.
 */
import { after } from "node:test";
import { createRuntime, type Runtime, type RuntimeConfig } from "../../src/index.ts";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import type { StorageDriver } from "../../src/store/driver.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema } from "../helpers.ts";

export type StoreName = "sqlite" | "postgres";
export const STORES: readonly StoreName[] = ["sqlite", "postgres"];

const dir = tempDir();

/** A place for one test's data: a new SQLite file or PostgreSQL schema, shared by the runtimes opened on it. */
export function newStore(store: StoreName): () => StorageDriver {
  if (store === "sqlite") {
    const path = tempDb(dir);
    return () => new SqliteDriver({ path });
  }
  const schema = tempSchema();
  return () => new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema, poolSize: 4 });
}

/**
 * A started runtime on the store, stopped when the file's tests end. Maintenance timers are slow
 * so that tests drive the duties with runOnce() after moving the clock.
 */
export async function runtimeOn(open: () => StorageDriver, config: Partial<RuntimeConfig> = {}): Promise<Runtime> {
  const runtime = createRuntime({
    db: open(),
    logger: false,
    isolation: "none",
    secret: "a-test-secret-of-sufficient-length",
    ...config,
    maintenance: config.maintenance === false ? false : { rescueIntervalMs: 3_600_000, scheduleIntervalMs: 3_600_000, ...config.maintenance },
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return runtime;
}
