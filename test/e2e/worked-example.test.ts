/**
 * The worked example of the mission, end to end through the real server: a fresh database, the
 * example package published by `underway start`, sign in, run the process, and the Activity
 * appears for the signed-in user. The example's 30 s wait is shortened by its documented setting.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema, until } from "../helpers.ts";

const root = join(import.meta.dirname, "..", "..");

async function startServer(db: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(root, "bin", "underway.mjs"), "start", "--port", "0", "--db", db], {
    cwd: root,
    env: {
      ...process.env,
      UNDERWAY_LOG_LEVEL: "warn",
      UNDERWAY_ADMIN_PASSWORD: "e2e-supervisor",
      UNDERWAY_SECRET: "an end-to-end test secret",
      UNDERWAY_EXAMPLE_DELAY_MS: "300",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  after(() => {
    child.kill("SIGTERM");
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const url = await until(() => /listening on (http:\/\/[\d.]+:\d+)/.exec(out)?.[1], `the server to listen (stderr: ${err})`, 60_000);
  return { url, child };
}

async function json(response: Response): Promise<Record<string, unknown>> {
  const body = (await response.json()) as Record<string, unknown>;
  assert.ok(response.ok, `${response.status}: ${JSON.stringify(body)}`);
  return body;
}

for (const store of ["sqlite", "postgres"] as const) {
  describe(`the worked example on ${store}`, () => {
    it("runs UsrBackgroundTaskExampleProcess and the Activity appears for the user who ran it", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const { url } = await startServer(db);
      const login = await json(await fetch(`${url}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ login: "Supervisor", password: "e2e-supervisor" }) }));
      const auth = { authorization: `Bearer ${String(login.token)}` };
      const user = login.user as { contactId: string; contactName: string };

      const run = await json(await fetch(`${url}/api/processes/UsrBackgroundTaskExampleProcess/run`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" }));
      const instanceId = String(run.instanceId);
      const log = await until(async () => {
        const l = await json(await fetch(`${url}/api/process-log/${instanceId}`, { headers: auth }));
        return l.status === "Completed" ? l : null;
      }, "the process to complete", 30_000);
      assert.equal(log.title, "Background Task Example Process");
      assert.deepEqual(
        (log.elements as { kind: string; status: string }[]).map((e) => [e.kind, e.status]),
        [
          ["startEvent", "Completed"],
          ["scriptTask", "Completed"],
          ["terminateEndEvent", "Completed"],
        ],
      );

      type Item = { title: string; type: { id: string; name: string }; category: { name: string }; status: { name: string }; priority: { name: string }; owner: { id: string; name: string }; author: { id: string } };
      const activity = await until(async () => {
        const list = await json(await fetch(`${url}/api/activities?title=${encodeURIComponent("Activity created by background task")}`, { headers: auth }));
        return (list.items as Item[])[0] ?? null;
      }, "the Activity to appear", 30_000);
      assert.equal(activity.title, "Activity created by background task");
      assert.equal(activity.type.id, "fbe0acdc-cfc0-df11-b00f-001d60e938c6");
      assert.deepEqual([activity.type.name, activity.category.name, activity.status.name, activity.priority.name], ["Task", "To do", "Not started", "Medium"]);
      assert.equal(activity.owner.id, user.contactId);
      assert.equal(activity.author.id, user.contactId);
      assert.equal(activity.owner.name, user.contactName);
    });
  });
}
