/**
 * The routes of the web application: the task centre's data with its rights checks, the process
 * library, the change feed (server-sent events) and the built pages with their security headers.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createHttpServer } from "../../src/http/server.ts";
import { Activity } from "../../src/platform/entities/activity.ts";
import { Task, type IBackgroundTask, type IUserConnectionRequired, type UserConnectionLike } from "../../src/index.ts";
import { tempDir, until } from "../helpers.ts";
import { STORES, startPlatform } from "../platform/helpers.ts";

class Echo implements IBackgroundTask<{ text: string; blob: string }>, IUserConnectionRequired {
  static readonly taskOptions = { maxAttempts: 1 };
  setUserConnection(_connection: UserConnectionLike): void {}
  run(data: { text: string; blob: string }): void {
    if (data.text === "fail") throw new Error("asked to fail");
  }
}

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "background-activity");

async function signIn(app: Awaited<ReturnType<typeof createHttpServer>>, login: string, password: string) {
  const response = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login, password } });
  assert.equal(response.statusCode, 200, response.body);
  const { token } = response.json() as { token: string };
  return { authorization: `Bearer ${token}` };
}

describe("the web application's API", () => {
  it("lists, counts, shows and acts on tasks with rights: administrators all, users their own", async () => {
    const platform = await startPlatform("sqlite", { tasks: [Echo], isolation: "none" });
    const webRoot = tempDir();
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot });
    const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
    const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
    const big = "x".repeat(5000);
    const failed = await platform.runAs(alice, () => Task.startNewWithUserConnection(Echo, { text: "fail", blob: big }));
    await assert.rejects(failed.wait({ timeoutMs: 10_000 }));
    const ok = await platform.runAs(bob, () => Task.startNewWithUserConnection(Echo, { text: "bob's secret", blob: "" }));
    await ok.wait({ timeoutMs: 10_000 });
    const asAlice = await signIn(app, "alice", "alice-pass");
    const asBob = await signIn(app, "bob", "bob-pass");
    const asAdmin = await signIn(app, "Supervisor", "supervisor-pass");

    assert.equal((await app.inject({ method: "GET", url: "/api/tasks" })).statusCode, 401);
    assert.equal((await app.inject({ method: "GET", url: "/api/tasks/counts" })).statusCode, 401);
    assert.equal((await app.inject({ method: "GET", url: "/api/events" })).statusCode, 401);

    type Page = { items: { id: string; state: string; user: { name: string } | null; lastError: { message: string } | null }[]; nextBefore: string | null };
    const all = (await app.inject({ method: "GET", url: "/api/tasks", headers: asAdmin })).json() as Page;
    assert.deepEqual(all.items.map((t) => [t.id, t.state, t.user?.name]), [[ok.id, "succeeded", "bob"], [failed.id, "dead", "alice"]]);
    const others = await app.inject({ method: "GET", url: "/api/tasks?user=bob", headers: asAlice });
    assert.equal(others.statusCode, 403, "a user's filter cannot reach other users' tasks");
    assert.deepEqual(others.json(), { error: "only administrators may list another user's tasks" });
    const mine = (await app.inject({ method: "GET", url: "/api/tasks?user=ALICE", headers: asAlice })).json() as Page;
    assert.deepEqual(mine.items.map((t) => t.id), [failed.id], "one's own login, in any case, is one's own tasks");
    assert.equal(mine.items[0]?.lastError?.message, "asked to fail");
    const byUser = (await app.inject({ method: "GET", url: "/api/tasks?user=bob&state=succeeded,dead", headers: asAdmin })).json() as Page;
    assert.deepEqual(byUser.items.map((t) => t.id), [ok.id]);
    const paged = (await app.inject({ method: "GET", url: "/api/tasks?limit=1", headers: asAdmin })).json() as Page;
    assert.equal(paged.nextBefore, ok.id);
    const older = (await app.inject({ method: "GET", url: `/api/tasks?limit=1&before=${ok.id}`, headers: asAdmin })).json() as Page;
    assert.deepEqual(older.items.map((t) => t.id), [failed.id]);
    const bad = await app.inject({ method: "GET", url: "/api/tasks?state=sleeping", headers: asAdmin });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /state/);

    const counts = (await app.inject({ method: "GET", url: "/api/tasks/counts", headers: asAlice })).json() as { counts: Record<string, number>; cap: number };
    assert.deepEqual([counts.counts.dead, counts.counts.succeeded], [1, 0]);
    const adminCounts = (await app.inject({ method: "GET", url: "/api/tasks/counts", headers: asAdmin })).json() as { counts: Record<string, number> };
    assert.deepEqual([adminCounts.counts.dead, adminCounts.counts.succeeded], [1, 1]);
    const activity = (await app.inject({ method: "GET", url: "/api/tasks/activity", headers: asAdmin })).json() as { succeeded: number[]; failed: number[] };
    assert.equal(activity.succeeded.length, 60);
    assert.deepEqual([activity.succeeded.reduce((a, b) => a + b), activity.failed.reduce((a, b) => a + b)], [1, 1]);

    // One task: its parameters decoded and shortened, its attempts, who started it.
    const detail = await app.inject({ method: "GET", url: `/api/tasks/${failed.id}`, headers: asAlice });
    assert.equal(detail.statusCode, 200);
    const task = detail.json() as { parameters: { text: string; blob: string }; errors: { message: string; stack: string | null }[]; user: { name: string } };
    assert.equal(task.parameters.text, "fail");
    assert.match(task.parameters.blob, /^x{300}… \(4700 more characters\)$/);
    assert.equal(task.errors[0]?.message, "asked to fail");
    assert.match(task.errors[0]?.stack ?? "", /Echo\.run/);
    assert.equal(task.user.name, "alice");
    // Another user's task is not found, and its parameters never leave the server.
    const hidden = await app.inject({ method: "GET", url: `/api/tasks/${ok.id}`, headers: asAlice });
    assert.equal(hidden.statusCode, 404);
    assert.doesNotMatch(hidden.body, /secret/);
    assert.equal((await app.inject({ method: "POST", url: `/api/tasks/${ok.id}/retry`, headers: asAlice })).statusCode, 404);
    assert.equal((await app.inject({ method: "DELETE", url: `/api/tasks/${ok.id}`, headers: asAlice })).statusCode, 404);
    assert.equal((await app.inject({ method: "GET", url: "/api/tasks/abc", headers: asAlice })).statusCode, 400);

    // Actions: refused with the reason when the state does not allow them.
    const cancelEnded = await app.inject({ method: "POST", url: `/api/tasks/${ok.id}/cancel`, headers: asBob });
    assert.equal(cancelEnded.statusCode, 409);
    assert.match(cancelEnded.body, /already ended/);
    const retry = await app.inject({ method: "POST", url: `/api/tasks/${failed.id}/retry`, headers: asAlice });
    assert.equal(retry.statusCode, 200);
    await until(async () => (await platform.runtime.getTask(failed.id)).state === "dead" && (await platform.runtime.getTask(failed.id)).attempt === 2, "the retried task to fail again", 10_000);
    const removed = await app.inject({ method: "DELETE", url: `/api/tasks/${failed.id}`, headers: asAdmin });
    assert.equal(removed.statusCode, 200);
    assert.equal(await platform.runtime.findTask(failed.id), null);
    await app.close();
  });

  it("lists published processes; only administrators get the script bodies", async () => {
    const platform = await startPlatform("sqlite", { packages: [EXAMPLE], isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    await platform.users.create({ login: "alice", password: "alice-pass" });
    const asAlice = await signIn(app, "alice", "alice-pass");
    const asAdmin = await signIn(app, "Supervisor", "supervisor-pass");
    assert.equal((await app.inject({ method: "GET", url: "/api/processes" })).statusCode, 401);
    const library = (await app.inject({ method: "GET", url: "/api/processes", headers: asAlice })).json() as { items: Record<string, unknown>[] };
    assert.deepEqual(library.items, [{ code: "UsrBackgroundTaskExampleProcess", title: "Background Task Example Process", packageName: "UsrBackgroundTask", version: 1 }]);
    const forAdmin = (await app.inject({ method: "GET", url: "/api/processes/UsrBackgroundTaskExampleProcess", headers: asAdmin })).json() as { xml: string };
    assert.match(forAdmin.xml, /startNewWithUserConnection/);
    const forAlice = (await app.inject({ method: "GET", url: "/api/processes/UsrBackgroundTaskExampleProcess", headers: asAlice })).json() as { xml: string };
    assert.match(forAlice.xml, /<bpmn:script><\/bpmn:script>/);
    assert.doesNotMatch(forAlice.xml, /startNewWithUserConnection/);
    assert.equal((await app.inject({ method: "GET", url: "/api/processes/Nope", headers: asAlice })).statusCode, 404);
    await app.close();
  });

  it("cancels a process instance: 404 for one there is none of or the user may not see, 409 naming its status once it ended", async () => {
    const platform = await startPlatform("sqlite", { packages: [EXAMPLE], isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    await platform.users.create({ login: "alice", password: "alice-pass" });
    const asAlice = await signIn(app, "alice", "alice-pass");
    const asAdmin = await signIn(app, "Supervisor", "supervisor-pass");
    const cancel = (id: string, headers: Record<string, string>) => app.inject({ method: "POST", url: `/api/process-log/${id}/cancel`, headers });
    const unknown = await cancel("0b8f4c9e-5b1a-4a57-9a43-2f1c1d6e7a10", asAdmin);
    assert.equal(unknown.statusCode, 404);
    assert.equal((unknown.json() as { error: string }).error, 'no process instance "0b8f4c9e-5b1a-4a57-9a43-2f1c1d6e7a10" that you may see');
    const run = await app.inject({ method: "POST", url: "/api/processes/UsrBackgroundTaskExampleProcess/run", headers: asAdmin, payload: {} });
    const { instanceId } = run.json() as { instanceId: string };
    await until(async () => {
      const log = (await app.inject({ method: "GET", url: `/api/process-log/${instanceId}`, headers: asAdmin })).json() as { status: string };
      return log.status === "Completed" ? log : null;
    }, "the process to complete", 20_000);
    assert.equal((await cancel(instanceId, asAlice)).statusCode, 404);
    const ended = await cancel(instanceId, asAdmin);
    assert.equal(ended.statusCode, 409);
    assert.match(ended.body, /the instance is not running: it is Completed/);
    await app.close();
  });

  for (const store of STORES) {
    it(`tells connected pages when tasks or Activities change, from the database (${store})`, async () => {
      const platform = await startPlatform(store, { tasks: [Echo], isolation: "none" });
      const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false, changeFeedIntervalMs: 50 });
      await app.listen({ port: 0, host: "127.0.0.1" });
      const address = app.server.address();
      const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
      const asAdmin = await signIn(app, "Supervisor", "supervisor-pass");
      const response = await fetch(`${url}/api/events`, { headers: asAdmin });
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
      assert.equal(response.headers.get("x-content-type-options"), "nosniff");
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let received = "";
      const read = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          received += Buffer.from(value).toString();
        }
      })();
      await until(() => received.includes(": connected"), "the stream to open");
      // The feed's first look sets its marks; changes after it are told.
      await new Promise((r) => setTimeout(r, 120));
      // Written straight to the database, as another process or node would: no in-process event.
      const supervisor = await platform.users.getByLogin("Supervisor");
      assert.ok(supervisor);
      await platform.runtime.driver.taskInsert({ name: "Echo", queue: "elsewhere", priority: 0, parameters: new Uint8Array([0x80]), maxAttempts: 1, timeoutMs: 0, initiator: null, withUserConnection: false });
      await until(() => received.includes("event: tasks"), "a tasks event", 5_000);
      const activity = new Activity(platform.userConnection(supervisor));
      activity.title = "Seen live";
      activity.setDefColumnValues();
      await activity.save();
      await until(() => received.includes("event: activities"), "an activities event", 5_000);
      await app.close();
      await read;
    });
  }

  it("serves the built pages with security headers, and says how to build them when missing", async () => {
    const platform = await startPlatform("sqlite");
    const webRoot = tempDir();
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot });
    const missing = await app.inject({ method: "GET", url: "/" });
    assert.equal(missing.statusCode, 503);
    assert.match(missing.body, /npm run build:web/);
    writeFileSync(join(webRoot, "index.html"), "<!doctype html><title>underway</title>");
    mkdirSync(join(webRoot, "assets"));
    writeFileSync(join(webRoot, "assets", "app-1234.js"), "console.log(1)");
    const index = await app.inject({ method: "GET", url: "/" });
    assert.equal(index.statusCode, 200);
    assert.match(index.headers["content-type"] as string, /text\/html/);
    const csp = String(index.headers["content-security-policy"]);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /upgrade-insecure-requests/, "a server on plain http must still load its own assets");
    assert.equal(index.headers["x-frame-options"], "SAMEORIGIN");
    assert.equal(index.headers["cache-control"], "no-cache");
    const asset = await app.inject({ method: "GET", url: "/assets/app-1234.js" });
    assert.equal(asset.statusCode, 200);
    assert.match(asset.headers["content-type"] as string, /javascript/);
    assert.match(String(asset.headers["cache-control"]), /immutable/);
    assert.equal((await app.inject({ method: "GET", url: "/assets/none.js" })).statusCode, 404);
    assert.equal((await app.inject({ method: "GET", url: "/assets/..%2F..%2Fpackage.json" })).statusCode, 404);
    assert.equal((await app.inject({ method: "GET", url: "/api/unknown" })).statusCode, 401);
    await app.close();
  });
});
