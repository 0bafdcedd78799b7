/**
 * PostgreSQL: a start with a deduplication key whose holder ends between the insert (which stored
 * nothing: the key was held) and the read of the holder. The key is free then: the task is stored.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { task } from "../conformance/driver-suite.ts";
import { TEST_POSTGRES_URL, tempSchema } from "../helpers.ts";

type Query = (text: string, values: readonly unknown[], tx?: unknown) => Promise<Record<string, unknown>[]>;

it("stores the task when the key's holder ends between the insert and the read of the holder", async () => {
  const schema = tempSchema();
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema, watch: false });
  try {
    await driver.migrate();
    const holder = await driver.taskInsert(task({ dedupKey: "report-42" }));
    const [claimed] = await driver.taskClaim({ workerId: "w", leaseMs: 60_000, limit: 1 });
    assert.equal(claimed?.id, holder);

    // The holder's run ends just before the holder is read, as when its worker's write lands there.
    const inner = driver as unknown as { query: Query; sql: { dedupHolder: string } };
    const query = inner.query.bind(driver);
    let ended = false;
    inner.query = async (text, values, tx) => {
      if (text === inner.sql.dedupHolder && !ended) {
        ended = true;
        await driver.taskCompleteMany([{ kind: "succeeded", id: holder, runSeq: claimed!.runSeq }]);
      }
      return query(text, values, tx);
    };
    const id = await driver.taskInsert(task({ dedupKey: "report-42" }));
    assert.ok(ended, "the holder ended between the two statements");
    assert.notEqual(id, holder);
    const stored = await driver.taskGet(id);
    assert.equal(stored?.state, "queued");
    assert.equal((await driver.taskGet(holder))?.state, "succeeded");
  } finally {
    await driver.close();
  }
});
