/**
 * Kysely over the store's connection: the platform's tables (users, entities, process log) are
 * reached through a query builder whose statements run on the connection and transaction the
 * store driver lends. Inside runtime.transaction(...), every query joins that transaction, and so
 * does every task started there.
 */
import {
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from "kysely";
import type { DriverTransaction, StorageDriver } from "../../store/driver.ts";

interface Connection extends DatabaseConnection {
  /** Set while a Kysely transaction (db.transaction()) is open on this connection. */
  tx: DriverTransaction | null;
  finish: ((commit: boolean) => void) | null;
  settled: Promise<void> | null;
}

class Rollback extends Error {}

class StoreDriver implements Driver {
  constructor(private readonly store: StorageDriver) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const store = this.store;
    const connection: Connection = {
      tx: null,
      finish: null,
      settled: null,
      async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
        const result = await store.sqlQuery(compiled.sql, compiled.parameters, connection.tx ?? undefined);
        return { rows: result.rows as R[], numAffectedRows: BigInt(result.affectedRows) };
      },
      // eslint-disable-next-line require-yield
      async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
        throw new Error("streaming queries are not supported by underway's store connection");
      },
    };
    return connection;
  }

  /** Opens a store transaction that stays open until Kysely commits or rolls back. */
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as Connection;
    await new Promise<void>((ready, failed) => {
      c.settled = this.store
        .transaction(
          (tx) =>
            new Promise<void>((resolve, reject) => {
              c.tx = tx;
              c.finish = (commit) => (commit ? resolve() : reject(new Rollback("rollback")));
              ready();
            }),
        )
        .catch((error: unknown) => {
          failed(error);
          if (!(error instanceof Rollback)) throw error;
        });
    });
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await this.end(connection as Connection, true);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await this.end(connection as Connection, false);
  }

  private async end(c: Connection, commit: boolean): Promise<void> {
    const settled = c.settled;
    c.finish?.(commit);
    c.tx = null;
    c.finish = null;
    c.settled = null;
    await settled;
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {}
}

/** A Kysely instance speaking the store's dialect over the store's connection. */
export function createKysely<DB>(store: StorageDriver): Kysely<DB> {
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
