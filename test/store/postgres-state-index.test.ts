/**
 * PostgreSQL's (state, id) index holds only the states a task rests in (migration 0011), so that
 * a start and a claim write no entry in it: queued and running tasks are read through the partial
 * indexes that hold them. Every statement that reads by state must still find an index for it.
 * The plans are read as the driver's prepared statements may run them, generic (planned without
 * their parameters' values), and with sequential scans disabled, so a statement no index can serve
 * shows as a Seq Scan whatever the table holds.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { TASK_STATES, type TaskState } from "../../src/tasks/types.ts";
import { task } from "../conformance/driver-suite.ts";
import { TEST_POSTGRES_URL, tempSchema } from "../helpers.ts";

type Query = (text: string, values: readonly unknown[], tx?: unknown) => Promise<Record<string, unknown>[]>;

/** Which index holds each state's rows. */
const INDEX_OF: Record<TaskState, RegExp> = {
  queued: /underway_tasks_fair(_key)?\b/,
  running: /underway_tasks_running\b/,
  succeeded: /underway_tasks_state\b/,
  failed: /underway_tasks_state\b/,
  dead: /underway_tasks_state\b/,
  canceled: /underway_tasks_state\b/,
};

describe("PostgreSQL reads by task state", () => {
  const schema = tempSchema();
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema, watch: false });
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  /** The statements the driver ran since the last call, with their values. */
  let seen: { text: string; values: readonly unknown[] }[] = [];

  before(async () => {
    await driver.migrate();
    await admin.connect();
    await admin.query("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan");
    const inner = driver as unknown as { query: Query };
    const query = inner.query.bind(driver);
    inner.query = (text, values, tx) => {
      seen.push({ text, values });
      return query(text, values, tx);
    };
  });
  after(async () => {
    await admin.end();
    await driver.close();
  });

  /** The plan of the one statement `call` runs, as text. */
  async function planOf(call: () => Promise<unknown>, pick: (text: string) => boolean = () => true): Promise<string> {
    seen = [];
    await call();
    const statements = seen.filter((s) => pick(s.text));
    assert.equal(statements.length, 1, `expected one statement, got: ${statements.map((s) => s.text).join("\n---\n")}`);
    const [{ text, values }] = statements as [{ text: string; values: readonly unknown[] }];
    await admin.query(`PREPARE planned AS ${text}`);
    try {
      const args = values.length ? `(${values.map(literal).join(", ")})` : "";
      const { rows } = await admin.query<{ "QUERY PLAN": string }>(`EXPLAIN EXECUTE planned${args}`);
      return rows.map((r) => r["QUERY PLAN"]).join("\n");
    } finally {
      await admin.query("DEALLOCATE planned");
    }
  }

  /** A statement's value as an SQL literal, for EXECUTE. */
  function literal(value: unknown): string {
    if (value === null || value === undefined) return "NULL";
    if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
    if (Array.isArray(value)) return admin.escapeLiteral(`{${value.map((v) => `"${String(v).replace(/["\\]/g, "\\$&")}"`).join(",")}}`);
    return admin.escapeLiteral(String(value));
  }

  it("has a state index without queued and running tasks", async () => {
    const { rows } = await admin.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'underway_tasks_state'", [
      schema,
    ]);
    assert.match(rows[0]?.indexdef ?? "", /\(state, id\) WHERE \(state <> ALL \(ARRAY\['queued'::text, 'running'::text\]\)\)$/);
  });

  it("lists each state, and several, through the index that holds them", async () => {
    for (const state of TASK_STATES) {
      const plan = await planOf(() => driver.taskList({ states: [state], limit: 50 }));
      assert.match(plan, INDEX_OF[state], `${state}:\n${plan}`);
      assert.doesNotMatch(plan, /Seq Scan/, `${state}:\n${plan}`);
    }
    const plan = await planOf(() => driver.taskList({ states: ["dead", "canceled"], limit: 50 }));
    assert.match(plan, /underway_tasks_state\b/, plan);
    assert.doesNotMatch(plan, /Seq Scan/, plan);
  });

  it("counts each state up to a bound through the index that holds it", async () => {
    const plan = await planOf(() => driver.taskCountByStateUpTo({ cap: 1_000 }));
    assert.doesNotMatch(plan, /Seq Scan/, plan);
    for (const state of TASK_STATES) assert.match(plan, INDEX_OF[state], `${state}:\n${plan}`);
  });

  it("reads the queues' depth and requeues dead tasks through indexes", async () => {
    const depth = await planOf(() => driver.taskQueueDepth());
    assert.doesNotMatch(depth, /Seq Scan/, depth);
    await driver.taskInsert(task());
    const retry = await planOf(
      () => driver.taskRetryMany({ states: ["dead"], limit: 100 }),
      (text) => text.includes("UPDATE"),
    );
    assert.match(retry, /underway_tasks_state\b/, retry);
    assert.doesNotMatch(retry, /Seq Scan/, retry);
  });
});
