/**
 * The PostgreSQL store's warm-up at a start: the connections it keeps are opened at once, each
 * server process plans the queue's statements (never runs them), and nothing is left behind.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import pg from "pg";
import { createRuntime } from "../../src/index.ts";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { borrowStore } from "../../src/store/remote/borrower.ts";
import { StoreLender } from "../../src/store/remote/lender.ts";
import type { RemoteReply } from "../../src/store/remote/protocol.ts";
import { task } from "../conformance/driver-suite.ts";
import { TEST_POSTGRES_URL, tempSchema } from "../helpers.ts";

it("opens the connections it keeps at once, and leaves no statement prepared nor any row written", async () => {
  const schema = tempSchema();
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema, watch: false, warmConnections: 3, poolSize: 5 });
  try {
    await driver.migrate();
    const pool = (driver as unknown as { pool: pg.Pool }).pool;
    assert.equal(pool.totalCount, 1, "migrate() used one connection");
    await driver.warm();
    assert.equal(pool.totalCount, 3);
    assert.equal(pool.idleCount, 3);
    // Each of the three sessions: its own server process, no statement left prepared.
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    try {
      const pids = new Set<number>();
      for (const client of clients) {
        const { rows } = await client.query<{ pid: number; prepared: number }>(
          "SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM pg_prepared_statements)::int AS prepared",
        );
        pids.add(rows[0]!.pid);
        assert.equal(rows[0]!.prepared, 0);
      }
      assert.equal(pids.size, 3);
    } finally {
      for (const client of clients) client.release();
    }
    assert.equal(pool.totalCount, 3, "no connection opened on demand");
    assert.deepEqual((await driver.sqlQuery("SELECT count(*)::int AS n FROM underway_tasks", [])).rows, [{ n: 0 }]);
    // The queue works on the readied connections as on any other.
    const id = await driver.taskInsert(task());
    const [claimed] = await driver.taskClaim({ workerId: "w", leaseMs: 60_000, limit: 5 });
    assert.equal(claimed?.id, id);
  } finally {
    await driver.close();
  }
});

it("fails with the reason on a store that is not migrated, and keeps none of those connections", async () => {
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema: tempSchema(), watch: false, warmConnections: 2 });
  try {
    await assert.rejects(driver.warm(), /underway_tasks/);
    const pool = (driver as unknown as { pool: pg.Pool }).pool;
    assert.equal(pool.totalCount, 0);
  } finally {
    await driver.close();
  }
});

it("opens none with warmConnections 0 (the driver's default), and refuses a negative or fractional count", async () => {
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema: tempSchema(), watch: false });
  try {
    await driver.warm();
    assert.equal((driver as unknown as { pool: pg.Pool }).pool.totalCount, 0);
  } finally {
    await driver.close();
  }
  assert.throws(() => new PostgresDriver({ connectionString: TEST_POSTGRES_URL, warmConnections: -1 }), /warmConnections must be a whole number, got -1/);
  assert.throws(() => new PostgresDriver({ connectionString: TEST_POSTGRES_URL, warmConnections: 1.5 }), /warmConnections must be a whole number, got 1.5/);
});

it("a runtime readies 3 connections with a worker, 2 without, none without maintenance either (the CLI's inspection commands)", async () => {
  const schema = tempSchema();
  const url = `${TEST_POSTGRES_URL}?schema=${schema}`;
  const cases = [
    [{}, 3],
    [{ worker: false }, 2],
    [{ worker: false, maintenance: false }, 0],
  ] as const;
  for (const [config, expected] of cases) {
    const runtime = createRuntime({ db: url, logger: false, isolation: "none", ...config });
    await runtime.start();
    try {
      // migrate() holds one, as with no warm-up; the worker's and maintenance's first looks may open one more.
      const pool = (runtime.driver as unknown as { pool: pg.Pool }).pool;
      assert.ok(pool.totalCount >= Math.max(1, expected), `${JSON.stringify(config)}: ${pool.totalCount} connections`);
      if (expected === 0) assert.equal(pool.totalCount, 1, `${JSON.stringify(config)}: only migrate()'s`);
      assert.equal((pool as unknown as { options: { min: number } }).options.min, expected);
    } finally {
      await runtime.stop({ graceMs: 0 });
    }
  }
});

it("readies nothing for a task's thread: its borrowed store's warm-up asks nothing of the worker's process, which refuses it", async () => {
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema: tempSchema(), watch: false, warmConnections: 3 });
  const { port1, port2 } = new MessageChannel();
  try {
    await driver.migrate();
    const pool = (driver as unknown as { pool: pg.Pool }).pool;
    new StoreLender(driver, port1);
    const borrowed = borrowStore(port2, { dialect: "postgres", capabilities: driver.capabilities, schema: driver.schema, description: driver.description });
    await borrowed.warm!();
    // Posted as a raw request, the lending side refuses it too.
    const reply = new Promise<RemoteReply>((resolve) => port2.once("message", resolve));
    port2.postMessage({ id: 999, op: "call", method: "warm", args: [] });
    const answer = await reply;
    assert.equal(answer.ok, false);
    assert.match(answer.ok ? "" : answer.error.message, /the store method "warm" is not available to tasks/);
    assert.equal(pool.totalCount, 1, "migrate()'s connection only");
  } finally {
    port1.close();
    port2.close();
    await driver.close();
  }
});
