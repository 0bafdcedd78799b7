/**
 * The UserConnection of a task that runs in a thread: built there by createRuntime's
 * userConnectionModule, since the userConnectionFactory function lives in the worker's process.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { createRuntime, runAsUser, Task, type IBackgroundTask, type IUserConnectionRequired, type RuntimeConfig, type UserConnectionLike } from "../../src/index.ts";
import { WhoAmIIsolatedTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
const CONNECTIONS = new URL("../fixtures/user-connections.ts", import.meta.url);
const dir = tempDir();

/** Trusted: runs on the worker's event loop. */
class WhoAmIHere implements IBackgroundTask<{ file: string }, string>, IUserConnectionRequired {
  static readonly taskOptions = { isolation: "none" as const };
  private connection: UserConnectionLike | null = null;
  setUserConnection(userConnection: UserConnectionLike): void {
    this.connection = userConnection;
  }
  run(): string {
    return this.connection?.currentUser.id ?? "none";
  }
}

async function started(config: Partial<RuntimeConfig>) {
  const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [FIXTURES, WhoAmIHere], isolation: { mode: "thread", minThreads: 1 }, ...config });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return runtime;
}

it("builds a thread's UserConnection with the userConnectionModule, and the worker's process's with it too", async () => {
  const runtime = await started({ userConnectionModule: CONNECTIONS });
  const file = join(dir, "who.txt");
  const [inThread, here] = await runAsUser({ userId: "u1" }, () =>
    runtime.run(() => Promise.all([Task.startNewWithUserConnection(WhoAmIIsolatedTask, { file }), Task.startNewWithUserConnection(WhoAmIHere, { file })])),
  );
  await inThread.wait({ timeoutMs: 20_000 });
  assert.equal(readFileSync(file, "utf8"), "u1@thread\n");
  await here.wait({ timeoutMs: 20_000 });
  assert.equal(await here.result(), "u1@main");
});

it("says how to give threads a UserConnection when only a factory function was given", async () => {
  const runtime = await started({ userConnectionFactory: (initiator) => ({ currentUser: { id: initiator.userId } }) });
  const file = join(dir, "never.txt");
  const handle = await runAsUser({ userId: "u1" }, () => runtime.run(() => Task.startNewWithUserConnection(WhoAmIIsolatedTask, { file })));
  await assert.rejects(handle.wait({ timeoutMs: 20_000 }), /ended/);
  const error = (await handle.get()).lastError;
  assert.match(error?.message ?? "", /the userConnectionFactory given to createRuntime is a function of the worker's process.*userConnectionModule/);
  assert.equal(existsSync(file), false);
});

it("fails the attempts with the reason when the userConnectionModule exports no factory", async () => {
  const runtime = await started({ userConnectionModule: FIXTURES });
  const handle = await runAsUser({ userId: "u1" }, () => runtime.run(() => Task.startNewWithUserConnection(WhoAmIHere, { file: "" })));
  await assert.rejects(handle.wait({ timeoutMs: 20_000 }), /ended/);
  assert.match((await handle.get()).lastError?.message ?? "", /userConnectionModule .*isolation-tasks\.ts exports no function userConnectionFactory/);
});
