import assert from "node:assert/strict";
import { MessageChannel } from "node:worker_threads";
import { after, it } from "node:test";
import { borrowStore } from "../../src/store/remote/borrower.ts";
import { StoreLender } from "../../src/store/remote/lender.ts";
import type { RemoteReply } from "../../src/store/remote/protocol.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

/** A SQLite store lent over a message channel, and the store the other end borrows. */
async function lentStore(onInserted?: (names: readonly string[]) => void) {
  const driver = new SqliteDriver({ path: tempDb(dir) });
  await driver.migrate();
  after(() => driver.close());
  const { port1, port2 } = new MessageChannel();
  after(() => {
    port1.close();
    port2.close();
  });
  new StoreLender(driver, port1, () => undefined, onInserted);
  const borrowed = borrowStore(port2, { dialect: "sqlite", capabilities: driver.capabilities, schema: null, description: driver.description });
  return { driver, borrowed, port: port2 };
}

const task = (name: string) => ({ name, queue: "default", priority: 0, parameters: new Uint8Array([0x80]), maxAttempts: 1, timeoutMs: 0, initiator: null, withUserConnection: false });

it("refuses a thread the worker's own methods, the hand-off of a start included, even sent as raw messages", async () => {
  const { driver, borrowed, port: port2 } = await lentStore();
  const claim = { workerId: "someone", leaseMs: 60_000 };
  await assert.rejects(borrowed.taskInsertClaimed!(task("T"), claim), /the store method "taskInsertClaimed" is not available to tasks/);
  await assert.rejects(borrowed.taskClaim({ workerId: "someone", limit: 1, leaseMs: 60_000 }), /not available to tasks/);

  // A thread that posts the request itself meets the same refusal on the lending side.
  const reply = new Promise<RemoteReply>((resolve) => port2.once("message", resolve));
  port2.postMessage({ id: 999, op: "call", method: "taskInsertClaimed", args: [task("T"), claim] });
  const answer = await reply;
  assert.equal(answer.ok, false);
  assert.match(answer.ok ? "" : answer.error.message, /not available to tasks/);
  assert.deepEqual((await driver.taskList({})).items, [], "nothing stored");
});

it("tells the process which tasks a thread stored, and runs a continuation's insert in the thread's transaction", async () => {
  const reported: string[][] = [];
  const { driver, borrowed } = await lentStore((names) => reported.push([...names]));

  const first = await borrowed.taskInsert(task("One"));
  await borrowed.taskInsertMany([task("Two"), task("Three")]);
  const continued = await borrowed.transaction(async (tx) => {
    await borrowed.taskInsert(task("Four"), tx);
    return borrowed.taskInsertContinuation(task("Five"), { taskIds: [first], onlyOnSuccess: false }, tx);
  });
  // A statement the store refused stores nothing and reports nothing.
  await assert.rejects(borrowed.taskInsert({ ...task("Six"), maxAttempts: 0 }));
  assert.deepEqual(reported, [["One"], ["Two", "Three"], ["Four"], ["Five"]]);
  const stored = await driver.taskGet(continued);
  assert.equal(stored?.name, "Five");
  assert.equal(stored?.waitingFor, 1, "the continuation waits for its predecessor");
});
