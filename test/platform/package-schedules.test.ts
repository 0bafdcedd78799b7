/**
 * Recurring tasks a package declares: defined when a build is published or a folder installed,
 * updated by newer builds, deleted when a build no longer declares them, refused (naming the
 * package and the schedule) when they do not fit the build. The clock is moved, never waited for.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Packages } from "../../src/platform/packages/packages.ts";
import { Platform } from "../../src/platform/platform.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";

const TASKS = `import type { IBackgroundTask } from "underway";

export class UsrTick implements IBackgroundTask<{ label: string }> {
  run(parameters: { label: string }): void {
    if (typeof parameters.label !== "string") throw new Error("a tick needs a label");
  }
}

export class UsrNeedsUser implements IBackgroundTask<null> {
  setUserConnection(): void {}
  run(): void {}
}
`;

// Slow maintenance timers: the test fires ticks itself with runOnce() after moving the clock.
const MAINTENANCE = { scheduleIntervalMs: 3_600_000, rescueIntervalMs: 3_600_000 };

async function savePackage(platform: Platform): Promise<void> {
  await platform.packages.ensurePackage("UsrSched");
  await platform.packages.saveSchema("UsrSched", { name: "UsrSchedTasks", kind: "source", body: TASKS });
}

const heartbeat = (extra: Record<string, unknown> = {}) => ({ name: "heartbeat", cron: "*/5 * * * *", task: "UsrTick", parameters: { label: "v1" }, ...extra });

async function schedulesOf(platform: Platform) {
  return (await platform.runtime.listSchedules()).filter((s) => s.name.startsWith("UsrSched."));
}

for (const store of STORES) {
  describe(`package schedules on ${store}`, () => {
    it("are defined when a build is published, follow newer builds, and run the package's task", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0, maintenance: MAINTENANCE });
      await savePackage(platform);
      assert.deepEqual(await platform.packages.publish("UsrSched", null, { schedules: [heartbeat({ timeZone: "Europe/Berlin", options: { queue: "ticks", maxAttempts: 2 } })] }), { version: 1 });
      const [defined] = await schedulesOf(platform);
      assert.equal(defined?.name, "UsrSched.heartbeat");
      assert.equal(defined?.taskName, "UsrTick");
      assert.equal(defined?.cron, "*/5 * * * *");
      assert.equal(defined?.timeZone, "Europe/Berlin");
      assert.equal(defined?.queue, "ticks");
      assert.equal(defined?.maxAttempts, 2);
      assert.deepEqual((await platform.packages.build("UsrSched", 1))?.manifest.schedules?.map((s) => s.name), ["heartbeat"]);

      // A tick starts the package's task, which a worker runs from the build.
      const next = defined?.nextRunAt?.getTime() ?? 0;
      platform.runtime.driver.clockShift(next - (await platform.runtime.driver.clockNow()) + 1_000);
      assert.deepEqual(await platform.runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
      const [tick] = (await platform.runtime.listTasks({ name: "UsrTick" })).items;
      assert.equal(tick?.scheduleName, "UsrSched.heartbeat");
      assert.equal((await platform.runtime.waitForTask(tick?.id ?? "", { timeoutMs: 20_000 })).state, "succeeded");

      // A newer build with other schedules updates the schedule and keeps its state (paused here).
      await platform.runtime.pauseSchedule("UsrSched.heartbeat");
      const daily = { name: "daily", cron: "0 3 * * *", task: "UsrTick", parameters: { label: "daily" }, missed: "skip" };
      assert.deepEqual(await platform.packages.publish("UsrSched", null, { schedules: [heartbeat({ cron: "0 * * * *", parameters: { label: "v2" } }), daily] }), { version: 2 });
      const second = await schedulesOf(platform);
      assert.deepEqual(second.map((s) => [s.name, s.cron, s.timeZone, s.queue, s.paused, s.missed]), [
        ["UsrSched.daily", "0 3 * * *", "UTC", "default", false, "skip"],
        ["UsrSched.heartbeat", "0 * * * *", "UTC", "default", true, "once"],
      ]);

      // A publish that does not give schedules (the web application's Publish) keeps the package's.
      assert.deepEqual(await platform.packages.publish("UsrSched"), { version: 3 });
      assert.deepEqual((await schedulesOf(platform)).map((s) => s.name), ["UsrSched.daily", "UsrSched.heartbeat"]);
      assert.deepEqual((await platform.packages.build("UsrSched", 3))?.manifest.schedules?.map((s) => s.name), ["heartbeat", "daily"]);

      // A build that no longer declares a schedule deletes it; other schedules are not touched.
      await platform.runtime.defineSchedule({ name: "UsrSched.in-code", cron: "0 0 * * *", task: UsrCodeTask, parameters: null });
      assert.deepEqual(await platform.packages.publish("UsrSched", null, { schedules: [daily] }), { version: 4 });
      assert.deepEqual((await schedulesOf(platform)).map((s) => s.name), ["UsrSched.daily", "UsrSched.in-code"]);
      await platform.packages.publish("UsrSched", null, { schedules: [] });
      assert.deepEqual((await schedulesOf(platform)).map((s) => s.name), ["UsrSched.in-code"]);
    });

    it("refuses schedules that do not fit the build, naming the package and the schedule; the previous build stays", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0, maintenance: MAINTENANCE });
      await savePackage(platform);
      assert.deepEqual(await platform.packages.publish("UsrSched", null, { schedules: [heartbeat()] }), { version: 1 });
      const refused = async (schedules: unknown, message: RegExp): Promise<void> => {
        await assert.rejects(platform.packages.publish("UsrSched", null, { schedules: schedules as unknown[] }), (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.equal(error.name, "PackageScheduleError");
          assert.match(error.message, message);
          return true;
        });
      };
      const nightly = { name: "nightly", cron: "0 2 * * *", task: "UsrTick", parameters: { label: "n" } };
      await refused([{ ...nightly, cron: "61 * * * *" }], /^package UsrSched: schedule "nightly": bad cron expression "61 \* \* \* \*": .*minute/);
      await refused([{ ...nightly, timeZone: "Mars/Olympus" }], /^package UsrSched: schedule "nightly": unknown time zone "Mars\/Olympus"/);
      await refused([{ ...nightly, task: "UsrNope" }], /^package UsrSched: schedule "nightly": no task class named "UsrNope" in the package \(its task classes: UsrNeedsUser, UsrTick\)$/);
      await refused([{ ...nightly, task: "UsrNeedsUser" }], /^package UsrSched: schedule "nightly": UsrNeedsUser needs a user connection, but a schedule has no user to run it as$/);
      await refused([{ ...nightly, missed: "twice" }], /^package UsrSched: schedule "nightly": missed must be "once" or "skip", got "twice"$/);
      await refused([{ ...nightly, timezone: "UTC" }], /^package UsrSched: schedule "nightly": unknown property "timezone"; a schedule has name, cron, timeZone, task, parameters, missed, options$/);
      await refused([{ ...nightly, options: { queue: "bad queue!" } }], /^package UsrSched: schedule "nightly": options.queue must be 1-100 letters/);
      await refused([{ ...nightly, options: { retries: 3 } }], /^package UsrSched: schedule "nightly": unknown option "retries"/);
      await refused([nightly, nightly], /^package UsrSched: schedule "nightly": the package declares two schedules with this name$/);
      await refused([{ ...nightly, name: "no spaces" }], /^package UsrSched: schedules\[0\].name must be 1-99 letters, digits or _ . : -, got "no spaces"$/);
      await refused({ nightly }, /^package UsrSched: "schedules" must be an array/);
      assert.equal((await platform.packages.latestVersions()).get("UsrSched"), 1);
      assert.deepEqual((await schedulesOf(platform)).map((s) => [s.name, s.cron]), [["UsrSched.heartbeat", "*/5 * * * *"]]);
    });

    it("are read from a package folder when it is installed, and defined again at every start", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const folder = join(tempDir(), "UsrSched");
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "UsrSchedTasks.ts"), TASKS);
      const descriptor = (schedules: unknown[]) =>
        JSON.stringify({ name: "UsrSched", schemas: [{ name: "UsrSchedTasks", kind: "source", file: "UsrSchedTasks.ts" }], schedules });
      const config = { db, logger: false as const, secret: "package schedules test secret", adminPassword: "sched-pass", maintenance: MAINTENANCE };

      writeFileSync(join(folder, "underway-package.json"), descriptor([heartbeat({ task: "UsrNope" })]));
      const bad = await Platform.start({ ...config, worker: false });
      after(() => bad.stop({ graceMs: 0 }));
      await assert.rejects(bad.installPackage(folder), /^PackageScheduleError: package UsrSched: schedule "heartbeat": no task class named "UsrNope" in the package/);
      await bad.stop({ graceMs: 0 });

      writeFileSync(join(folder, "underway-package.json"), descriptor([heartbeat()]));
      const first = await Platform.start({ ...config, packages: [folder] });
      after(() => first.stop({ graceMs: 0 }));
      assert.deepEqual((await schedulesOf(first)).map((s) => [s.name, s.taskName]), [["UsrSched.heartbeat", "UsrTick"]]);
      await first.runtime.deleteSchedule("UsrSched.heartbeat");
      await first.stop({ graceMs: 0 });

      const second = await Platform.start(config);
      after(() => second.stop({ graceMs: 0 }));
      assert.deepEqual((await schedulesOf(second)).map((s) => [s.name, s.taskName]), [["UsrSched.heartbeat", "UsrTick"]]);
    });

    it("deletes, at the next start or publish, a schedule an earlier build declared that a later one's publish left behind", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const config = { db, logger: false as const, secret: "package schedules test secret", adminPassword: "sched-pass", maintenance: MAINTENANCE, packageRefreshMs: 0 };
      const nightly = { name: "nightly", cron: "0 2 * * *", task: "UsrTick", parameters: { label: "n" } };
      const names = async (platform: Platform) => (await schedulesOf(platform)).map((s) => s.name).sort();
      // Stores a build without defining or deleting its schedules: as a publish whose apply failed partway.
      const publishOnly = (platform: Platform, schedules: unknown[]) => new Packages(platform.runtime.driver, platform.db).publish("UsrSched", null, { schedules });

      const first = await Platform.start(config);
      after(() => first.stop({ graceMs: 0 }));
      await savePackage(first);
      await first.packages.publish("UsrSched", null, { schedules: [heartbeat(), nightly] });
      await publishOnly(first, [heartbeat()]);
      assert.deepEqual(await names(first), ["UsrSched.heartbeat", "UsrSched.nightly"]);
      await first.stop({ graceMs: 0 });

      const second = await Platform.start(config);
      after(() => second.stop({ graceMs: 0 }));
      assert.deepEqual(await names(second), ["UsrSched.heartbeat"]);

      await second.packages.publish("UsrSched", null, { schedules: [heartbeat(), nightly] });
      await publishOnly(second, [heartbeat()]);
      assert.deepEqual(await names(second), ["UsrSched.heartbeat", "UsrSched.nightly"]);
      // The next publish deletes what any earlier build declared, not only the build before it.
      await second.packages.publish("UsrSched", null, { schedules: [heartbeat()] });
      assert.deepEqual(await names(second), ["UsrSched.heartbeat"]);
    });
  });
}

/** A task class of the application itself, for a schedule defined in code. */
class UsrCodeTask {
  run(): void {}
}
