import assert from "node:assert/strict";
import { MessageChannel } from "node:worker_threads";
import { after, it } from "node:test";
import { borrowStore } from "../../src/store/remote/borrower.ts";
import { StoreLender } from "../../src/store/remote/lender.ts";
import type { RemoteReply } from "../../src/store/remote/protocol.ts";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { storeInfoOf, type LenderHooks } from "../../src/store/remote/lender.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import type { StorageDriver } from "../../src/store/driver.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema } from "../helpers.ts";

const dir = tempDir();

/** The driver, migrated, lent over a message channel, and the store the other end borrows; closed when the file's tests end. */
async function lend(driver: StorageDriver, hooks: LenderHooks = {}) {
  await driver.migrate();
  after(() => driver.close());
  const { port1, port2 } = new MessageChannel();
  after(() => {
    port1.close();
    port2.close();
  });
  new StoreLender(driver, port1, hooks);
  return { driver, borrowed: borrowStore(port2, storeInfoOf(driver)), port: port2 };
}

/** A SQLite store lent over a message channel, and the store the other end borrows. */
function lentStore(onInserted?: (names: readonly string[]) => void, onContinuation?: () => void) {
  return lend(new SqliteDriver({ path: tempDb(dir) }), { ...(onInserted ? { onInserted } : {}), ...(onContinuation ? { onContinuation } : {}) });
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

it("tells the process of a continuation the thread stored once it is committed, so that it starts it", async () => {
  let told = 0;
  const { borrowed } = await lentStore(undefined, () => told++);
  const first = await borrowed.taskInsert(task("One"));
  await borrowed.taskInsertContinuation(task("After"), { taskIds: [first], onlyOnSuccess: false });
  assert.equal(told, 1, "stored outside a transaction: told at once");
  await borrowed.transaction(async (tx) => {
    await borrowed.taskInsertContinuation(task("AfterInTx"), { taskIds: [first], onlyOnSuccess: false }, tx);
    assert.equal(told, 1, "not before the commit: the process would not see it yet");
  });
  assert.equal(told, 2, "told at the commit");
  await assert.rejects(
    borrowed.transaction(async (tx) => {
      await borrowed.taskInsertContinuation(task("RolledBack"), { taskIds: [first], onlyOnSuccess: false }, tx);
      throw new Error("rolled back");
    }),
    /rolled back/,
  );
  await borrowed.taskInsert(task("Plain"));
  assert.equal(told, 2, "neither a rollback nor a plain insert tells of one");
});

it("answers malformed, unknown and oversized requests with an error, and drops what has no id, staying up", async () => {
  const { driver, borrowed, port } = await lentStore();
  const answers: RemoteReply[] = [];
  const listener = (reply: RemoteReply) => answers.push(reply);
  port.on("message", listener);
  const ask = async (message: unknown): Promise<RemoteReply> => {
    const before = answers.length;
    port.postMessage(message);
    // The lender answers in order; a ping after it shows it has (or has not) answered.
    port.postMessage({ id: 1_000_000 + before, op: "call", method: "ping", args: [] });
    for (;;) {
      const last = answers.at(-1);
      if (last?.id === 1_000_000 + before) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return answers.slice(before, -1)[0] ?? { id: -1, ok: true, value: "no answer" };
  };
  const refused = async (message: unknown, pattern: RegExp) => {
    const answer = await ask(message);
    assert.equal(answer.ok, false, JSON.stringify(message));
    assert.match(answer.ok ? "" : answer.error.message, pattern);
  };

  // No id: nothing to answer, and nothing breaks (a null once crashed the process).
  for (const message of [null, 42, "call", [], { op: "call", method: "ping", args: [] }]) {
    assert.deepEqual(await ask(message), { id: -1, ok: true, value: "no answer" });
  }
  await refused({ id: 1, op: "drop-everything" }, /unknown store request "drop-everything"/);
  await refused({ id: 2 }, /unknown store request "undefined"/);
  await refused({ id: 3, op: "call", method: 7, args: [] }, /needs the name of a store method/);
  await refused({ id: 4, op: "call", method: "ping", args: "x" }, /arguments as an array of at most 8/);
  // A few bytes that would spread into a hundred million arguments.
  await refused({ id: 5, op: "call", method: "ping", args: new Array(100_000_000) }, /arguments as an array of at most 8/);
  await refused({ id: 6, op: "call", method: "ping", args: [], txId: "1" }, /transaction id must be a number/);
  await refused({ id: 7, op: "commit" }, /a commit request needs the id of its transaction/);
  await refused({ id: 9, op: "awaitEnd", taskId: 1, ms: 10 }, /an awaitEnd request needs a task id/);
  await refused({ id: 10, op: "awaitEnd", taskId: "x".repeat(101), ms: 10 }, /an awaitEnd request needs a task id/);
  await refused({ id: 11, op: "awaitEnd", taskId: "1", ms: 86_400_000 }, /a wait from 0 to 60000 ms/);
  await refused({ id: 12, op: "awaitEnd", taskId: "1", ms: Number.NaN }, /a wait from 0 to 60000 ms/);
  // Without a process to tell of ends, a wait is a wait.
  port.postMessage({ id: 13, op: "awaitEnd", taskId: "1", ms: 5 });
  while (!answers.some((a) => a.id === 13)) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(
    answers.find((a) => a.id === 13),
    { id: 13, ok: true, value: null },
  );
  // Only the store's own methods, by name.
  for (const method of ["constructor", "valueOf", "statement", "exclusive", "__proto__", "taskEndNotice"]) {
    await refused({ id: 8, op: "call", method, args: [] }, /is not available to tasks/);
  }
  port.off("message", listener);
  // Still serving.
  await borrowed.taskInsert(task("After"));
  assert.deepEqual((await driver.taskList({})).items.map((t) => t.name), ["After"]);
});

it("runs work of a transaction's async context that outlives it outside it, as the drivers do", async () => {
  const { driver, borrowed } = await lentStore();
  let late: Promise<unknown> | null = null;
  await borrowed.transaction(async () => {
    await borrowed.taskInsert(task("Inside"));
    // Started inside, touching the store after the commit.
    late = new Promise((resolve) => setTimeout(resolve, 5)).then(async () => {
      const id = await borrowed.taskInsert(task("Late"));
      const nested = await borrowed.transaction(async (tx) => (await tx.execute("SELECT 1 AS one")).length);
      return { id, nested };
    });
  });
  const result = (await late) as unknown as { id: string; nested: number };
  assert.equal(result.nested, 1);
  assert.deepEqual((await driver.taskList({})).items.map((t) => t.name), ["Late", "Inside"]);
});

/** The same driver in the process and lent to a "thread": what each gives for a binary column and a refused insert. */
async function asSeenBy(driver: StorageDriver, table: string): Promise<Record<string, unknown>[]> {
  const { borrowed } = await lend(driver);
  const blob = driver.dialect === "postgres" ? "bytea" : "BLOB";
  await driver.sqlQuery(`CREATE TABLE ${table} (k INTEGER PRIMARY KEY, b ${blob})`, []);
  await driver.sqlQuery(`INSERT INTO ${table} (k, b) VALUES (1, $1)`.replace("$1", driver.dialect === "postgres" ? "$1" : "?"), [Buffer.from([1, 2])]);
  const seen: Record<string, unknown>[] = [];
  for (const store of [driver, borrowed]) {
    const [row] = (await store.sqlQuery(`SELECT b FROM ${table}`, [])).rows;
    const inTx = await store.transaction(async (tx) => tx.execute(`SELECT b FROM ${table}`));
    const error = await store.sqlQuery(`INSERT INTO ${table} (k) VALUES (1)`, []).then(
      () => null,
      (e: unknown) => e as Error & Record<string, unknown>,
    );
    assert.ok(error, "the duplicate key is refused");
    seen.push({
      isBuffer: Buffer.isBuffer(row?.b),
      hex: (row?.b as Buffer).toString("hex"),
      inTransactionIsBuffer: Buffer.isBuffer(inTx[0]?.b),
      name: error.name,
      code: error.code,
      constraint: error.constraint,
      detail: error.detail,
      stackNamesCaller: /asSeenBy/.test(error.stack ?? ""),
    });
  }
  return seen;
}

it("gives a thread binary columns as Buffers and the store's errors with their fields, as in the process (SQLite)", async () => {
  const [inProcess, borrowed] = await asSeenBy(new SqliteDriver({ path: tempDb(dir) }), "blobs");
  assert.deepEqual(borrowed, { ...inProcess, stackNamesCaller: true });
  assert.equal(inProcess?.hex, "0102");
  assert.equal(inProcess?.code, "SQLITE_CONSTRAINT_PRIMARYKEY");
});

it("gives a thread binary columns as Buffers and the store's errors with their fields, as in the process (PostgreSQL)", async () => {
  const schema = tempSchema();
  const [inProcess, borrowed] = await asSeenBy(new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema }), `"${schema}".blobs`);
  assert.deepEqual(borrowed, { ...inProcess, stackNamesCaller: true });
  assert.equal(inProcess?.hex, "0102");
  assert.equal(inProcess?.code, "23505");
  assert.equal(inProcess?.constraint, "blobs_pkey");
  assert.match(String(inProcess?.detail), /already exists/);
});

it("gives a thread the Buffers of a PostgreSQL bytea array, as in the process", async () => {
  const schema = tempSchema();
  const driver = new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema });
  const { borrowed } = await lend(driver);
  const query = "SELECT ARRAY['\\x01'::bytea, '\\x0203'::bytea] AS arr";
  const seen = [];
  for (const store of [driver, borrowed]) {
    const [row] = (await store.sqlQuery(query, [])).rows;
    const [inTx] = await store.transaction(async (tx) => tx.execute(query));
    seen.push([row?.arr, inTx?.arr].map((arr) => (arr as unknown[]).map((b) => (Buffer.isBuffer(b) ? `Buffer ${b.toString("hex")}` : String(b)))));
  }
  assert.deepEqual(seen[1], seen[0]);
  assert.deepEqual(seen[0], [
    ["Buffer 01", "Buffer 0203"],
    ["Buffer 01", "Buffer 0203"],
  ]);
});
