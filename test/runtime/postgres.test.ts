import assert from "node:assert/strict";
import { it } from "node:test";
import { runAsUser, Task, type IBackgroundTask, type IUserConnectionRequired, type UserConnectionLike } from "../../src/index.ts";
import { startRuntime, TEST_POSTGRES_URL, tempSchema } from "../helpers.ts";

class Hello implements IBackgroundTask<{ to: string }>, IUserConnectionRequired {
  static ran: string[] = [];
  private user = "";
  setUserConnection(c: UserConnectionLike): void {
    this.user = c.currentUser.id;
  }
  run(p: { to: string }): void {
    Hello.ran.push(`${this.user}:${p.to}`);
  }
}

it("runs tasks on a postgres:// URL, with the schema from the URL", async () => {
  const schema = tempSchema();
  const runtime = await startRuntime({
    dir: "",
    db: `${TEST_POSTGRES_URL}?schema=${schema}`,
    tasks: [Hello],
    secret: "a test secret of some length",
    userConnectionFactory: (initiator) => ({ currentUser: { id: initiator.userId } }),
  });
  assert.equal(runtime.driver.dialect, "postgres");
  // The worker is idle: the start is handed to it as the store keeps it (signed initiator included).
  const handedOver: string[] = [];
  const driver = runtime.driver;
  const insertClaimed = driver.taskInsertClaimed?.bind(driver);
  assert.ok(insertClaimed);
  driver.taskInsertClaimed = async (params, claim) => {
    const stored = await insertClaimed(params, claim);
    if (stored.claimed) handedOver.push(stored.id);
    return stored;
  };
  const handle = await runtime.run(() => runAsUser({ userId: "u7" }, () => Task.startNewWithUserConnection(Hello, { to: "world" })));
  const done = await handle.wait({ timeoutMs: 10_000 });
  assert.equal(done.state, "succeeded");
  assert.deepEqual(handedOver, [handle.id]);
  assert.deepEqual(Hello.ran, ["u7:world"]);
  // A task started inside a rolled-back transaction does not exist.
  await assert.rejects(
    runtime.transaction(async () => {
      await runAsUser({ userId: "u7" }, () => Task.startNewWithUserConnection(Hello, { to: "nobody" }));
      throw new Error("rollback");
    }),
    /rollback/,
  );
  assert.equal((await runtime.listTasks()).items.length, 1);
});

class Plain implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

it("opens a LISTEN connection only for a runtime with a worker: one that only starts tasks has no one to wake", async () => {
  const schema = tempSchema();
  const db = `${TEST_POSTGRES_URL}?schema=${schema}`;
  const { default: pg } = await import("pg");
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  const listening = async (): Promise<number> =>
    (await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1", [`LISTEN "${schema}"`])).rows[0]?.n ?? 0;
  try {
    const producer = await startRuntime({ dir: "", db, tasks: [Plain], worker: false, maintenance: false });
    const handle = await producer.run(() => Task.startNew(Plain, { n: 1 }));
    assert.equal(await listening(), 0, "a runtime without a worker listens");
    await startRuntime({ dir: "", db, tasks: [Plain] });
    assert.equal(await listening(), 1, "the worker's runtime listens");
    assert.equal((await handle.wait({ timeoutMs: 10_000 })).state, "succeeded");
  } finally {
    await admin.end();
  }
});
