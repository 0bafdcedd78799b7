import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Platform } from "../../src/platform/platform.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema, until } from "../helpers.ts";
import { processXml } from "./process-helpers.ts";

const root = join(import.meta.dirname, "..", "..");
const secret = "process crash test secret";

async function open(db: string, worker: boolean): Promise<Platform> {
  const platform = await Platform.start({
    db,
    logger: false,
    secret,
    adminPassword: "pw-for-crash-test",
    worker: worker ? {} : false,
    maintenance: { rescueIntervalMs: 3_600_000 },
  });
  after(() => platform.stop({ graceMs: 0 }));
  return platform;
}

for (const store of ["sqlite", "postgres"] as const) {
  describe(`process instances on ${store}`, () => {
    it("resume after their worker process is killed mid-flow", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const producer = await open(db, false);
      await producer.packages.ensurePackage("UsrCrash");
      await producer.packages.saveSchema("UsrCrash", {
        name: "UsrCrashProcess",
        kind: "process",
        body: processXml("UsrCrashProcess", "Crash", [
          { kind: "script", id: "First", body: 'context.set("First", true); return true;' },
          {
            kind: "script",
            id: "Slow",
            // The worker process started below hangs here; the one that resumes does not.
            body: 'if (process.env.UNDERWAY_TEST_HANG === "1") await new Promise(() => undefined); context.set("Resumed", true); return true;',
          },
          { kind: "end", id: "End", terminate: true },
        ]),
      });
      await producer.packages.publish("UsrCrash");
      const admin = producer.appConnection.systemUserConnection;
      const { instanceId } = await admin.processEngine.processExecutor.execute("UsrCrashProcess");

      const child = spawn(process.execPath, [join(root, "bin", "underway.mjs"), "worker", "--db", db], {
        cwd: root,
        env: { ...process.env, UNDERWAY_TEST_HANG: "1", UNDERWAY_SECRET: secret, UNDERWAY_LOG_LEVEL: "warn" },
        stdio: "ignore",
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
      await until(async () => {
        const log = await producer.processEngine.getLog(instanceId, admin);
        return log?.elements.some((e) => e.elementId === "Slow" && e.status === "Running");
      }, "the worker process to reach the slow script", 60_000);
      child.kill("SIGKILL");
      assert.equal(await exited, "SIGKILL");

      const resumer = await open(db, true);
      resumer.runtime.driver.clockShift(15_001); // past the dead worker's lease
      assert.deepEqual(await resumer.runtime.rescuer?.runOnce(), { retried: 1, dead: 0 });
      // As long as the wait above: the resuming runtime boots its task threads under the same load.
      const log = await until(async () => {
        const l = await resumer.processEngine.getLog(instanceId, resumer.appConnection.systemUserConnection);
        return l?.status === "Completed" ? l : null;
      }, "the instance to complete after the crash", 60_000);
      assert.deepEqual(
        log.elements.map((e) => `${e.elementId}:${e.status}`),
        ["Start:Completed", "First:Completed", "Slow:Completed", "End:Completed"],
      );
      assert.deepEqual(log.parameters, { First: true, Resumed: true });
    });

    it("end in Error when their task dies because every attempt's worker stopped renewing its lease", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const platform = await open(db, false);
      await platform.packages.ensurePackage("UsrLost");
      await platform.packages.saveSchema("UsrLost", {
        name: "UsrLostProcess",
        kind: "process",
        body: processXml("UsrLostProcess", "Lost", [{ kind: "script", id: "Work", body: "return true;" }, { kind: "end", id: "End" }]),
      });
      await platform.packages.publish("UsrLost");
      const admin = platform.appConnection.systemUserConnection;
      const { instanceId } = await admin.processEngine.processExecutor.execute("UsrLostProcess");
      // Each attempt is taken by a worker that dies at once (claimed here, never finished): the
      // rescue on the maintenance leader, not a worker, ends the task dead.
      const { driver } = platform.runtime;
      const dead: string[] = [];
      platform.runtime.on("taskDead", (event) => dead.push(`${event.name}:${event.error.name}`));
      for (let attempt = 1; attempt <= 3; attempt++) {
        const [claimed] = await driver.taskClaim({ workerId: `lost-${attempt}`, limit: 1, leaseMs: 1_000 });
        assert.ok(claimed, `attempt ${attempt} claimed`);
        driver.clockShift(1_001);
        const expected = attempt < 3 ? { retried: 1, dead: 0 } : { retried: 0, dead: 1 };
        const rescued = await platform.runtime.rescuer?.runOnce();
        assert.deepEqual({ retried: rescued?.retried, dead: rescued?.dead }, expected);
      }
      assert.deepEqual(dead, ["underway.ProcessInstance:LeaseExpiredError"]);
      const log = await until(async () => {
        const l = await platform.processEngine.getLog(instanceId, admin);
        return l?.status === "Error" ? l : null;
      }, "the instance to end in Error");
      assert.match(log.errorMessage ?? "", /stopped renewing its lease/);
    });
  });
}
