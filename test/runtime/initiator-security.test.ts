import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import {
  currentUser,
  runAsUser,
  Task,
  TaskFailedError,
  TaskSecurityError,
  type IBackgroundTask,
  type IUserConnectionRequired,
  type UserConnectionLike,
} from "../../src/index.ts";
import { encodeParameters } from "../../src/codec/index.ts";
import { startRuntime, TEST_POSTGRES_URL, tempDb, tempDir, tempSchema, until } from "../helpers.ts";

const dir = tempDir();
const ran: string[] = [];

class AsUser implements IBackgroundTask<{ amount: number }>, IUserConnectionRequired {
  private user = "";
  setUserConnection(c: UserConnectionLike): void {
    this.user = c.currentUser.id;
  }
  run(p: { amount: number }): void {
    ran.push(`${this.user}:${p.amount}`);
  }
}

const inactive = new Set<string>();
const userConnectionFactory = (initiator: { userId: string }) => {
  if (inactive.has(initiator.userId)) throw new TaskSecurityError(`user ${initiator.userId} is deactivated`);
  return { currentUser: { id: initiator.userId } };
};

async function failure(promise: Promise<unknown>): Promise<TaskFailedError> {
  const error = await promise.catch((e: unknown) => e);
  assert.ok(error instanceof TaskFailedError, String(error));
  return error;
}

/** A task without a user connection that starts one with a user connection, as whoever it runs as. */
class Starter implements IBackgroundTask<{ amount: number }> {
  static readonly taskOptions = { maxAttempts: 1 };
  async run(p: { amount: number }): Promise<void> {
    ran.push(`starter as ${currentUser()?.userId ?? "no one"}`);
    await Task.startNewWithUserConnection(AsUser, { amount: p.amount });
  }
}

describe("the initiator of a task", () => {
  it("is not taken from a changed row of a task without a user connection, nor lets it start work as that user", async () => {
    ran.length = 0;
    const db = tempDb(dir);
    const runtime = await startRuntime({ dir, db, tasks: [AsUser, Starter], worker: false, userConnectionFactory });
    const asAlice = <T>(fn: () => Promise<T>) => runtime.run(() => runAsUser({ userId: "alice" }, fn));
    const forged = await asAlice(() => Task.startNew(Starter, { amount: 10 }));
    const honest = await asAlice(() => Task.startNew(Starter, { amount: 20 }));
    const flagless = await asAlice(() => Task.startNewWithUserConnection(AsUser, { amount: 30 }));
    await runtime.transaction(async (tx) => {
      await tx.execute("UPDATE underway_tasks SET user_id = ? WHERE id = ?", ["admin", forged.id]);
      // A class that needs a user connection, stored as if started without one: no check would run.
      await tx.execute("UPDATE underway_tasks SET with_user_connection = 0 WHERE id = ?", [flagless.id]);
    });
    await runtime.stop();
    const worker = await startRuntime({ dir, db, tasks: [AsUser, Starter], userConnectionFactory, isolation: "none" });
    // The forged starter runs as no one, so its start with a user connection has no user to run as.
    const error = await failure(worker.waitForTask(forged.id, { timeoutMs: 5_000 }));
    assert.match(error.task.lastError?.message ?? "", /user/);
    assert.equal((await worker.waitForTask(honest.id, { timeoutMs: 5_000 })).state, "succeeded");
    const refused = await failure(worker.waitForTask(flagless.id, { timeoutMs: 5_000 }));
    assert.equal(refused.task.state, "dead");
    assert.equal(refused.task.lastError?.name, "TaskSecurityError");
    assert.match(refused.task.lastError?.message ?? "", /needs a user connection .* but the task is stored without one/);
    await until(() => ran.includes("alice:20"), "the honest starter's child to run");
    assert.ok(ran.includes("starter as no one"), ran.join(", "));
    assert.ok(ran.includes("starter as alice"), ran.join(", "));
    assert.ok(!ran.some((r) => r.startsWith("admin") || r === "starter as admin"), ran.join(", "));
    ran.length = 0;
  });


  it("is refused when the stored user or parameters were changed by hand", async () => {
    const runtime = await startRuntime({ dir, tasks: [AsUser], worker: false, userConnectionFactory });
    const start = (amount: number) =>
      runtime.run(() => runAsUser({ userId: "alice" }, () => Task.startNewWithUserConnection(AsUser, { amount })));
    const forged = await start(1);
    const altered = await start(2);
    const honest = await start(3);
    await runtime.transaction(async (tx) => {
      await tx.execute("UPDATE underway_tasks SET user_id = ? WHERE id = ?", ["mallory", forged.id]);
      await tx.execute("UPDATE underway_tasks SET parameters = ? WHERE id = ?", [encodeParameters({ amount: 1_000_000 }), altered.id]);
    });
    const db = runtime.driver.description;
    await runtime.stop();
    const worker = await startRuntime({ dir, db, tasks: [AsUser], userConnectionFactory });
    for (const id of [forged.id, altered.id]) {
      const error = await failure(worker.waitForTask(id, { timeoutMs: 5_000 }));
      assert.equal(error.task.state, "dead");
      assert.equal(error.task.attempt, 1);
      assert.equal(error.task.lastError?.name, "TaskSecurityError");
      assert.match(error.task.lastError?.message ?? "", /failed its integrity check/);
    }
    assert.equal((await worker.waitForTask(honest.id, { timeoutMs: 5_000 })).state, "succeeded");
    assert.deepEqual(ran, ["alice:3"]);
  });

  it("fails alone, and reads, when its stored context or error record is damaged", async () => {
    const runtime = await startRuntime({ dir, tasks: [AsUser], worker: false, userConnectionFactory });
    const start = (amount: number) =>
      runtime.run(() => runAsUser({ userId: "carol", culture: "fr-FR" }, () => Task.startNewWithUserConnection(AsUser, { amount })));
    const damaged = await start(10);
    const first = await start(11);
    const second = await start(12);
    await runtime.transaction(async (tx) => {
      await tx.execute("UPDATE underway_tasks SET user_context = ? WHERE id = ?", ["{not json", damaged.id]);
      await tx.execute("UPDATE underway_tasks SET last_error = ? WHERE id = ?", ["oops", second.id]);
    });
    const listed = await runtime.listTasks();
    assert.equal(listed.items.length, 3, "the list reads every row");
    assert.match((await runtime.getTask(second.id)).lastError?.message ?? "", /the stored error record cannot be read: "oops"/);
    assert.equal((await runtime.getTask(damaged.id)).initiator?.userId, "carol");
    const db = runtime.driver.description;
    await runtime.stop();
    const worker = await startRuntime({ dir, db, tasks: [AsUser], userConnectionFactory });
    const error = await failure(worker.waitForTask(damaged.id, { timeoutMs: 5_000 }));
    assert.equal(error.task.state, "dead");
    assert.equal(error.task.lastError?.name, "TaskSecurityError");
    for (const id of [first.id, second.id]) assert.equal((await worker.waitForTask(id, { timeoutMs: 5_000 })).state, "succeeded");
    assert.ok(ran.includes("carol:11") && ran.includes("carol:12") && !ran.includes("carol:10"));
  });

  it("reads, on PostgreSQL, a context or error record changed by hand to other JSON as SQLite does", async () => {
    const runtime = await startRuntime({ dir, db: `${TEST_POSTGRES_URL}?schema=${tempSchema()}`, tasks: [AsUser], worker: false, userConnectionFactory, secret: "initiator tests secret value" });
    const handle = await runtime.run(() => runAsUser({ userId: "dora", culture: "de-DE" }, () => Task.startNewWithUserConnection(AsUser, { amount: 1 })));
    await runtime.transaction(async (tx) => {
      await tx.execute(`UPDATE underway_tasks SET user_context = '"abc"'::jsonb, last_error = '42'::jsonb WHERE id = $1`, [Number(handle.id)]);
    });
    const task = await runtime.getTask(handle.id);
    assert.deepEqual(task.initiator, { userId: "dora" });
    assert.equal(task.lastError?.name, "Error");
    assert.match(task.lastError?.message ?? "", /the stored error record cannot be read: 42/);
    await runtime.stop();
  });

  it("is refused, without retries, when the user was deactivated after the start", async () => {
    const runtime = await startRuntime({ dir, tasks: [AsUser], userConnectionFactory, worker: false });
    const handle = await runtime.run(() => runAsUser({ userId: "bob" }, () => Task.startNewWithUserConnection(AsUser, { amount: 5 })));
    inactive.add("bob");
    const db = runtime.driver.description;
    await runtime.stop();
    const worker = await startRuntime({ dir, db, tasks: [AsUser], userConnectionFactory });
    const error = await failure(worker.waitForTask(handle.id, { timeoutMs: 5_000 }));
    assert.equal(error.task.attempt, 1);
    assert.equal(error.task.lastError?.message, "user bob is deactivated");
  });

  it("uses a secret kept beside the SQLite file, readable by its owner only", async () => {
    const db = tempDb(tempDir());
    await startRuntime({ dir, db, worker: false });
    const file = join(dirname(db), ".underway-secret");
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it("has no default secret for a PostgreSQL store, and refuses a short one", async () => {
    const before = process.env.UNDERWAY_SECRET;
    delete process.env.UNDERWAY_SECRET;
    try {
      const { resolveSecret } = await import("../../src/runtime/initiator-signature.ts");
      assert.equal(resolveSecret(undefined, null), null);
      assert.throws(() => resolveSecret("short", null), /at least 16 characters/);
    } finally {
      if (before !== undefined) process.env.UNDERWAY_SECRET = before;
    }
  });
});
