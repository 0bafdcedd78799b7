/**
 * Kysely over the store's connection: the platform's tables (users, entities, process log) are
 * reached through a query builder whose statements run on the connection and transaction the
 * store driver lends. Inside runtime.transaction(...), every query joins that transaction, and so
 * does every task started there.
 */
import type { CompiledQuery, DatabaseConnection, Dialect, Driver, Kysely as KyselyInstance, QueryResult } from "kysely";
import {
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "./kysely-module.ts";
import type { StorageDriver } from "../../store/driver.ts";

class StoreDriver implements Driver {
  constructor(private readonly store: StorageDriver) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const store = this.store;
    const connection: DatabaseConnection = {
      // Inside runtime.transaction(...) the store finds the open transaction by itself.
      async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
        const result = await store.sqlQuery(compiled.sql, compiled.parameters);
        return { rows: result.rows as R[], numAffectedRows: BigInt(result.affectedRows) };
      },
      // eslint-disable-next-line require-yield
      async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
        throw new Error("streaming queries are not supported by underway's store connection");
      },
    };
    return connection;
  }

  /**
   * Kysely's own transactions would run their callback outside the store's transaction context:
   * a task started or an entity saved inside would not join it (and on SQLite would wait for it
   * forever). runtime.transaction(fn) is the one way in.
   */
  async beginTransaction(): Promise<void> {
    throw new Error(
      "db.transaction() is not supported on the platform database: use runtime.transaction(async () => { ... }) — every query, entity save and task start inside it joins the transaction",
    );
  }

  async commitTransaction(): Promise<void> {}

  async rollbackTransaction(): Promise<void> {}

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {}
}

/** A Kysely instance speaking the store's dialect over the store's connection. */
export function createKysely<DB>(store: StorageDriver): KyselyInstance<DB> {
  const postgres = store.dialect === "postgres";
  const dialect: Dialect = {
    createAdapter: () => (postgres ? new PostgresAdapter() : new SqliteAdapter()),
    createDriver: () => new StoreDriver(store),
    createIntrospector: (db) => (postgres ? new PostgresIntrospector(db) : new SqliteIntrospector(db)),
    createQueryCompiler: () => (postgres ? new PostgresQueryCompiler() : new SqliteQueryCompiler()),
  };
  // On PostgreSQL the store's connections search its schema first, so names need no qualifying.
  return new Kysely<DB>({ dialect });
}
