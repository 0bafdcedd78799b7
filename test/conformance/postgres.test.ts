/**
 * The driver suite on PostgreSQL, each store in a schema of its own (dropped at the end), plus
 * what only PostgreSQL does: concurrent migration, LISTEN/NOTIFY, the listener's reconnection,
 * several drivers claiming at once. Needs the server of UNDERWAY_TEST_POSTGRES_URL
 * (default postgres://postgres@127.0.0.1:5432/test).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import pg from "pg";
import type { StorageDriver } from "../../src/store/driver.ts";
import { loadMigrations } from "../../src/store/migrations.ts";
import { PostgresDriver, type PostgresDriverOptions } from "../../src/store/postgres/driver.ts";
import { driverSuite, task } from "./driver-suite.ts";
import { compositionSuite } from "./composition-suite.ts";

const DATABASE_URL = process.env.UNDERWAY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const schemas = new Set<string>();
let counter = 0;

/** A new schema name of this file's, dropped when its tests end. */
function newSchema(prefix = "t"): string {
  const schema = `${prefix}_${process.pid}_${++counter}_${randomBytes(4).toString("hex")}`;
  schemas.add(schema);
  return schema;
}

const opened: StorageDriver[] = [];

/** A driver of this file's, closed when its tests end. */
function driver(options: Partial<PostgresDriverOptions> = {}): PostgresDriver {
  const d = new PostgresDriver({ connectionString: DATABASE_URL, schema: newSchema(), ...options });
  opened.push(d);
  return d;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

after(async () => {
  for (const d of opened) await d.close();
  if (schemas.size === 0) return;
  const names = [...schemas].map((s) => `"${s}"`).join(", ");
  await admin((client) => client.query(`DROP SCHEMA IF EXISTS ${names} CASCADE`));
});

/** Resolves with the promise, or rejects naming what did not happen in time. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The next wake-up of a driver. */
function nextWake(d: StorageDriver): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribe = d.onWake(() => {
      unsubscribe();
      resolve();
    });
  });
}

driverSuite({
  name: "postgres",
  create: async () => new PostgresDriver({ connectionString: DATABASE_URL, schema: newSchema() }),
});
compositionSuite({ name: "postgres", create: async () => new PostgresDriver({ connectionString: DATABASE_URL, schema: newSchema() }) });

describe("postgres driver", () => {
  it("migrates once when several processes start at the same moment", async () => {
    const schema = newSchema();
    const drivers = Array.from({ length: 4 }, () => driver({ schema, watch: false }));
    await Promise.all(drivers.map((d) => d.migrate()));
    const known = loadMigrations(new URL("../../src/store/postgres/migrations/", import.meta.url)).length;
    const applied = await admin(
      async (client) => (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".underway_migrations`)).rows[0]?.n,
    );
    assert.equal(applied, known);
    const ids = await Promise.all(drivers.map((d) => d.taskInsert(task())));
    assert.equal(new Set(ids).size, drivers.length);
  });

  it("quotes the schema everywhere: a mixed-case name works end to end", async () => {
    const d = driver({ schema: newSchema("Mixed_Case") });
    await d.migrate();
    const woke = nextWake(d);
    const id = await d.taskInsert(task());
    await within(woke, 5_000, "the wake-up of an insert");
    const [run] = await d.taskClaim({ workerId: "w", limit: 1, leaseMs: 1_000 });
    assert.equal(run?.id, id);
  });

  it("refuses a schema that is not a plain identifier", () => {
    for (const schema of ['a"b', "1abc", "pg_catalog", "a-b", "", "x".repeat(64)]) {
      assert.throws(() => new PostgresDriver({ connectionString: DATABASE_URL, schema }), /is not a plain identifier/);
    }
  });

  it("wakes another driver when one inserts, on commit only, once per statement", async () => {
    const schema = newSchema();
    const writer = driver({ schema, watch: false });
    const reader = driver({ schema });
    await writer.migrate();
    await reader.migrate(); // listening once this resolves

    const woke = nextWake(reader);
    await writer.taskInsert(task());
    await within(woke, 5_000, "the other driver's wake-up");

    // A raw listener sees each notification; a marker sent after a step shows the step sent none
    // (notifications arrive in commit order).
    const payloads: string[] = [];
    const seen = new Map<string, () => void>();
    const listener = new pg.Client({ connectionString: DATABASE_URL });
    await listener.connect();
    try {
      listener.on("notification", (m) => {
        payloads.push(m.payload ?? "");
        seen.get(m.payload ?? "")?.();
      });
      await listener.query(`LISTEN "${schema}"`);
      const mark = async (marker: string): Promise<void> => {
        const arrived = new Promise<void>((resolve) => seen.set(marker, resolve));
        await admin((client) => client.query("SELECT pg_notify($1, $2)", [schema, marker]));
        await within(arrived, 5_000, `the marker ${marker}`);
      };

      await writer.transaction(async (tx) => {
        await writer.taskInsert(task({ name: "InTx" }), tx);
        await mark("while-open");
      });
      await mark("after-commit");
      await assert.rejects(
        writer.transaction(async (tx) => {
          await writer.taskInsert(task({ name: "RolledBack" }), tx);
          throw new Error("rollback");
        }),
        /rollback/,
      );
      await mark("after-rollback");
      await writer.taskInsertMany(Array.from({ length: 5 }, () => task()));
      await mark("after-many");
      // A task handed to a worker as it is stored wakes no one; one that waits its turn does.
      await writer.taskClaim({ workerId: "w", limit: 100, leaseMs: 60_000 });
      assert.ok((await writer.taskInsertClaimed(task(), { workerId: "w", leaseMs: 60_000 })).claimed);
      await mark("after-hand-off");
      await writer.taskInsert(task());
      assert.equal((await writer.taskInsertClaimed(task(), { workerId: "w", leaseMs: 60_000 })).claimed, null);
      await mark("after-queued");
      assert.deepEqual(payloads, ["while-open", "", "after-commit", "after-rollback", "", "after-many", "after-hand-off", "", "", "after-queued"]);
    } finally {
      await listener.end();
    }
  });

  it("reconnects the listener when its connection is killed, wakes, and hears inserts again", async () => {
    const schema = newSchema();
    const writer = driver({ schema, watch: false });
    const reader = driver({ schema });
    await writer.migrate();
    await reader.migrate();
    const listenerPid = async (): Promise<number | undefined> =>
      admin(async (client) => {
        const { rows } = await client.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1",
          [`LISTEN "${schema}"`],
        );
        return rows[0]?.pid;
      });
    const before = await listenerPid();
    assert.ok(before, "the listener's backend");

    const rewoke = nextWake(reader);
    await admin((client) => client.query("SELECT pg_terminate_backend($1)", [before]));
    await within(rewoke, 10_000, "the wake-up after reconnecting");
    const now = await listenerPid();
    assert.ok(now && now !== before, "a new listener backend");

    const woke = nextWake(reader);
    await writer.taskInsert(task());
    await within(woke, 5_000, "the wake-up of an insert after reconnecting");
  });

  it("hands each task to one claimer when several drivers claim at once", async () => {
    const schema = newSchema();
    const drivers = Array.from({ length: 3 }, () => driver({ schema, watch: false, poolSize: 4 }));
    await Promise.all(drivers.map((d) => d.migrate()));
    const [first] = drivers;
    assert.ok(first);
    const inserted = await first.taskInsertMany(Array.from({ length: 60 }, (_, i) => task({ priority: i % 3 })));
    const claims = await Promise.all(
      Array.from({ length: 12 }, (_, i) => drivers[i % drivers.length]?.taskClaim({ workerId: `w${i}`, limit: 7, leaseMs: 10_000 }) ?? []),
    );
    const claimed = claims.flat().map((c) => c.id);
    assert.equal(new Set(claimed).size, claimed.length, "no task claimed twice");
    const rest = await first.taskClaim({ workerId: "last", limit: 100, leaseMs: 10_000 });
    assert.deepEqual([...claimed, ...rest.map((c) => c.id)].sort(), [...inserted].sort());
  });

  it("commits a claim of its own without waiting for the disk, and leaves a caller's transaction as it is", async () => {
    const d = driver({ watch: false, poolSize: 1 });
    await d.migrate();
    await d.taskInsertMany([task(), task()]);
    const sent: { text: string; values: unknown[] }[] = [];
    const query = pg.Client.prototype.query;
    // Passes every call through to the server; keeps the claims' statements to run them again below.
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as { text?: string; values?: unknown[] } | undefined;
      if (config?.text?.includes("SET state = 'running'")) sent.push({ text: config.text, values: config.values ?? [] });
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    let alone: string[];
    let inside: { claimed: string[]; setting: unknown };
    try {
      alone = (await d.taskClaim({ workerId: "w1", limit: 1, leaseMs: 10_000 })).map((c) => c.id);
      inside = await d.transaction(async (tx) => {
        const claimed = (await d.taskClaim({ workerId: "w2", limit: 1, leaseMs: 10_000 })).map((c) => c.id);
        const [row] = await tx.execute("SELECT current_setting('synchronous_commit') AS s");
        return { claimed, setting: row?.s };
      });
    } finally {
      pg.Client.prototype.query = query;
    }
    assert.equal(alone.length, 1);
    assert.equal(inside.claimed.length, 1);
    assert.equal(inside.setting, "on", "a claim inside a transaction leaves that transaction's commit durable");
    assert.equal(sent.length, 2);
    // The same connection afterwards: the claim's setting lasted its own transaction only.
    const [after] = await d.transaction((tx) => tx.execute("SELECT current_setting('synchronous_commit') AS s"));
    assert.equal(after?.s, "on");
    // Each statement as sent, in a transaction of its own that is rolled back: what it sets.
    const settings = await admin(async (client) => {
      const seen: unknown[] = [];
      for (const { text, values } of sent) {
        await client.query("BEGIN");
        await client.query(text, values);
        seen.push((await client.query("SELECT current_setting('synchronous_commit') AS s")).rows[0]?.s);
        await client.query("ROLLBACK");
      }
      return seen;
    });
    assert.deepEqual(settings, ["off", "on"]);
  });

  it("does not report a commit when a failed statement made PostgreSQL roll back", async () => {
    const d = driver({ watch: false });
    await d.migrate();
    await assert.rejects(
      d.transaction(async (tx) => {
        await d.taskInsert(task({ name: "Lost" }), tx);
        await tx.execute("SELECT 1 / 0").catch(() => undefined);
      }),
      /rolled back/,
    );
    assert.equal((await d.taskList({ name: "Lost" })).items.length, 0);
    const rows = await d.transaction((tx) => tx.execute("SELECT $1::int + 1 AS n", [41]));
    assert.deepEqual(rows, [{ n: 42 }]);
  });

  it("names the server, never the password, when it cannot connect", async () => {
    const d = new PostgresDriver({ connectionString: "postgres://postgres:s3cret-pw@127.0.0.1:1/test", schema: "x" });
    try {
      assert.equal(d.description, "postgres://postgres:***@127.0.0.1:1/test (schema x)");
      for (const call of [() => d.ping(), () => d.migrate(), () => d.taskGet("1")]) {
        await assert.rejects(call(), (error: Error) => {
          assert.match(error.message, /cannot connect to PostgreSQL at 127\.0\.0\.1:1 \(database test as user postgres\)/);
          assert.doesNotMatch(error.message, /s3cret/);
          return true;
        });
      }
    } finally {
      await d.close();
    }
    assert.throws(() => new PostgresDriver({ connectionString: "host=localhost password=s3cret" }), (error: Error) => {
      assert.match(error.message, /not a URL/);
      assert.doesNotMatch(error.message, /s3cret/);
      return true;
    });
  });

  it("says the store is not migrated, and closes once for all", async () => {
    const d = driver();
    await assert.rejects(d.taskGet("1"), /is not migrated yet: call migrate\(\) first/);
    await d.migrate();
    await d.close();
    await d.close();
    await assert.rejects(d.ping(), /the store postgres:\/\/.* is closed/);
    await assert.rejects(d.taskInsert(task()), /is closed/);
    await assert.rejects(
      d.transaction(async () => undefined),
      /is closed/,
    );
  });

  describe("the claim's statistics", () => {
    /** The plan of the claim's select, as a worker's claim runs it. */
    const claimPlan = (schema: string): Promise<string> =>
      admin(async (client) => {
        const { rows } = await client.query<{ "QUERY PLAN": string }>(
          `EXPLAIN SELECT id FROM "${schema}".underway_tasks WHERE state IN ('queued', 'failed') AND run_at <= now()
           ORDER BY priority DESC, fair_slot, id LIMIT 500 FOR UPDATE SKIP LOCKED`,
        );
        return rows.map((r) => r["QUERY PLAN"]).join("\n");
      });
    /** How many waiting tasks the planner believes in. */
    const plannedWaiting = (schema: string): Promise<number> =>
      admin(async (client) => {
        const { rows } = await client.query<{ "QUERY PLAN": string }>(
          `EXPLAIN SELECT 1 FROM "${schema}".underway_tasks WHERE state IN ('queued', 'failed')`,
        );
        return Number(/rows=(\d+)/.exec(rows[0]?.["QUERY PLAN"] ?? "")?.[1]);
      });
    /** The driver's statistics refresh under way, if any (it runs in the background). */
    const refreshed = (d: PostgresDriver): Promise<void> | null => (d as unknown as { analyzing: Promise<void> | null }).analyzing;
    /** A migrated store in a schema of its own, without wake-ups. */
    const migrated = async (): Promise<{ schema: string; d: PostgresDriver }> => {
      const schema = newSchema();
      const d = driver({ schema, watch: false });
      await d.migrate();
      return { schema, d };
    };
    const burst = (n: number) => Array.from({ length: n }, (_, i) => task({ priority: i % 2 }));

    it("are refreshed after a burst of inserts, and the claim then reads the claim-order index", async () => {
      const { schema, d } = await migrated();
      await d.taskInsertMany(burst(1_500));
      await refreshed(d);
      const plan = await claimPlan(schema);
      assert.match(plan, /Index Scan using underway_tasks_fair on/, plan);
      assert.doesNotMatch(plan, /Sort/, plan);
      const planned = await plannedWaiting(schema);
      assert.ok(planned >= 750 && planned <= 3_000, `the planner believes ${planned} tasks wait, of 1,500`);
    });

    it("are refreshed when the planner believes few tasks wait, however many finished ones the table holds", async () => {
      const { schema, d } = await migrated();
      for (let i = 0; i < 21; i++) {
        await d.taskInsertMany(burst(1_000));
        await refreshed(d);
      }
      // The tasks ran; autovacuum (here, by hand) refreshes the statistics: nothing waits.
      await admin((client) =>
        client.query(`UPDATE "${schema}".underway_tasks SET state = 'succeeded', finished_at = now(); ANALYZE "${schema}".underway_tasks`),
      );
      assert.ok((await plannedWaiting(schema)) < 100);
      await d.taskInsertMany(burst(1_000));
      await refreshed(d);
      const planned = await plannedWaiting(schema);
      assert.ok(planned >= 500 && planned <= 2_000, `the planner believes ${planned} tasks wait, of 1,000`);
    });

    it("count a transaction's inserts when it commits, and are refreshed with its rows in view", async () => {
      const { schema, d } = await migrated();
      await d.transaction(async (tx) => {
        await d.taskInsertMany(burst(1_500), tx);
        assert.equal(refreshed(d), null, "no refresh while the rows are not committed");
      });
      await refreshed(d);
      const planned = await plannedWaiting(schema);
      assert.ok(planned >= 750 && planned <= 3_000, `the planner believes ${planned} tasks wait, of 1,500`);
      // A transaction rolled back counts nothing.
      await assert.rejects(
        d.transaction(async (tx) => {
          await d.taskInsertMany(burst(1_500), tx);
          throw new Error("changed my mind");
        }),
        /changed my mind/,
      );
      assert.equal(refreshed(d), null);
    });

    it("are refreshed on a connection of the driver's own, never inside the caller's transaction", async () => {
      const { schema, d } = await migrated();
      const modes = await d.transaction(async (tx) => {
        await d.taskInsertMany(burst(1_000), tx);
        await refreshed(d);
        const [me] = await tx.execute("SELECT pg_backend_pid() AS pid");
        return admin(async (client) => {
          const { rows } = await client.query<{ mode: string }>(
            `SELECT mode FROM pg_locks WHERE pid = $1 AND relation = '"${schema}".underway_tasks'::regclass`,
            [me?.pid],
          );
          return rows.map((r) => r.mode);
        });
      });
      assert.ok(modes.includes("RowExclusiveLock"), `the transaction's locks: ${modes.join(", ")}`);
      assert.ok(!modes.includes("ShareUpdateExclusiveLock"), `the transaction's locks: ${modes.join(", ")}`);
    });
  });
});
