import assert from "node:assert/strict";
import { it } from "node:test";
import { startRuntime, tempDb, tempDir, until } from "../helpers.ts";

it("one node leads maintenance; another takes over on resign or when the leader's term passes", async () => {
  const dir = tempDir();
  const db = tempDb(dir);
  const a = await startRuntime({ dir, db, worker: false });
  await until(() => a.elector?.isLeader, "a to lead");
  const b = await startRuntime({ dir, db, worker: false });
  assert.equal(await b.elector?.runOnce(), false);
  assert.equal(a.elector?.isLeader, true);

  // A leader that stops hands over at once.
  await a.stop();
  assert.equal(await b.elector?.runOnce(), true);

  // A leader that dies (stops renewing) is replaced once its term passes.
  const c = await startRuntime({ dir, db, worker: false, maintenance: { leaderTermMs: 10_000 } });
  assert.equal(await c.elector?.runOnce(), false);
  c.driver.clockShift(15_001); // b's term (15 s by default) has passed for c's clock
  assert.equal(await c.elector?.runOnce(), true);
  assert.equal(await b.elector?.runOnce(), false);
});
