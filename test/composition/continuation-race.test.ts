/**
 * A continuation stored while its predecessor's completion is being written (PostgreSQL): the
 * completion's statement began before the continuation committed, so it does not see the new
 * edge and reports no continuations, and it commits after the runtime's first look found the
 * predecessor still running. The runtime looks once more shortly after, so the continuation
 * starts without waiting for the maintenance leader's pass (off in this test).
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import pg from "pg";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { TEST_POSTGRES_URL, tempSchema, until } from "../helpers.ts";
import { runtimeOn } from "../scheduling/stores.ts";

class Step implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

it("starts a continuation whose predecessor's completion raced its insert", async () => {
  const schema = tempSchema();
  const open = (): PostgresDriver => new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema, poolSize: 4 });
  // No worker here: the predecessor is claimed and completed below, as another process would.
  const runtime = await runtimeOn(open, { worker: false, tasks: [Step] });
  const other = open();
  after(() => other.close());
  await other.migrate();
  const a = await runtime.run(() => Task.startNew(Step, { n: 1 }));
  const [claimed] = await other.taskClaim({ workerId: "elsewhere", leaseMs: 60_000, limit: 1 });
  assert.equal(claimed?.id, a.id);

  // Holds the predecessor's row: the completion's statement starts (its snapshot taken) and waits.
  const holder = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await holder.connect();
  after(() => holder.end());
  await holder.query("BEGIN");
  await holder.query(`SELECT 1 FROM "${schema}".underway_tasks WHERE id = $1 FOR UPDATE`, [a.id]);
  const completion = other.taskCompleteMany([{ kind: "succeeded", id: a.id, runSeq: claimed.runSeq }]);
  await until(async () => {
    const { rows } = await holder.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%underway_tasks%'");
    return (rows[0] as { n: number }).n > 0;
  }, "the completion to wait for the row");

  // The continuation commits, and the runtime's first look finds the predecessor still running.
  const next = await runtime.run(() => Task.continueWith(a, Step, { n: 2 }));
  await new Promise((resolve) => setTimeout(resolve, 30));
  await holder.query("COMMIT");
  const { continuations } = await completion;
  assert.equal(continuations, false, "the completion did not see the new continuation");

  await until(async () => (await runtime.getTask(next.id)).waitingFor === 0, "the continuation to be released", 2_000);
  assert.equal((await runtime.getTask(next.id)).state, "queued");
});
