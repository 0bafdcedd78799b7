/**
 * The change feed behind the pages' event streams: one poll at a time however listeners come and
 * go, and a notice when tasks change.
 */
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ChangeFeed, type ChangeTopic } from "../../src/http/change-feed.ts";
import { Task } from "../../src/index.ts";
import { Activity } from "../../src/platform/entities/activity.ts";
import type { UserConnection } from "../../src/platform/user-connection.ts";
import { gate, TEST_POSTGRES_URL, until } from "../helpers.ts";
import { STORES, startPlatform } from "../platform/helpers.ts";

/** A stored Activity with this title, owned by nobody. */
async function addActivity(uc: UserConnection, title: string): Promise<Activity> {
  const activity = new Activity(uc);
  activity.setDefColumnValues();
  activity.title = title;
  activity.ownerId = null;
  await activity.save();
  return activity;
}

class UsrFeedTask {
  static readonly taskOptions = { isolation: "none" } as const;
  run(): void {}
}

describe("the change feed", () => {
  it("never polls twice at once when the last listener leaves and another comes during a poll", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none", worker: false });
    const driver = platform.runtime.driver;
    const read = driver.taskChangeMark.bind(driver);
    let calls = 0;
    let inFlight = 0;
    let most = 0;
    const release = gate();
    let held: Promise<void> | null = release.promise;
    // The real read, held at the test's gate while it is shut, counting reads under way.
    driver.taskChangeMark = async () => {
      calls++;
      most = Math.max(most, ++inFlight);
      try {
        if (held) await held;
        return await read();
      } finally {
        inFlight--;
      }
    };
    const feed = new ChangeFeed(platform, 20);
    const leave = feed.subscribe(() => {});
    await until(() => calls === 1, "the first poll");
    leave();
    const seen: ChangeTopic[] = [];
    const leaveToo = feed.subscribe((topic) => seen.push(topic));
    // A new listener's first poll would start at once: it must wait for the one under way.
    await sleep(30);
    assert.equal(calls, 1, "a second poll started while the first was under way");
    held = null;
    release.open();
    await until(() => calls >= 3, "the polls after the held one");
    assert.equal(most, 1);

    platform.runtime.registry.register(UsrFeedTask);
    await platform.runtime.run(() => Task.startNew(UsrFeedTask, {}));
    await until(() => seen.includes("tasks"), "a notice that tasks changed");
    leaveToo();
    await feed.stop();
    const after = calls;
    await sleep(60);
    assert.equal(calls, after, "polled after it stopped");
  });
});

for (const store of STORES) {
  describe(`the change feed on ${store}`, () => {
    it("tells that Activities changed when one is deleted that is neither the newest created nor modified", async () => {
      const platform = await startPlatform(store, { isolation: "none", worker: false });
      const uc = platform.appConnection.systemUserConnection;
      const add = (title: string): Promise<Activity> => addActivity(uc, title);
      const older = await add("the older one");
      await add("the newer one");
      const driver = platform.runtime.driver;
      const read = driver.taskChangeMark.bind(driver);
      let polls = 0;
      driver.taskChangeMark = async () => {
        polls++;
        return read();
      };
      const feed = new ChangeFeed(platform, 20);
      const seen: ChangeTopic[] = [];
      feed.subscribe((topic) => {
        seen.push(topic);
      });
      // Two polls begun: the first, which took the marks, has ended.
      await until(() => polls >= 2, "the first poll");
      assert.equal(seen.length, 0);
      assert.equal(await older.delete(), true);
      await until(() => seen.includes("activities"), "a notice that Activities changed");
      await feed.stop();
    });

    it("tells that Activities changed when a save lands in the same millisecond as the newest one", async () => {
      const platform = await startPlatform(store, { isolation: "none", worker: false });
      const uc = platform.appConnection.systemUserConnection;
      const add = (title: string): Promise<Activity> => addActivity(uc, title);
      const first = await add("first");
      const second = await add("second");
      const feed = new ChangeFeed(platform, 10);
      const seen: ChangeTopic[] = [];
      let polls = 0;
      const read = platform.runtime.driver.taskChangeMark.bind(platform.runtime.driver);
      platform.runtime.driver.taskChangeMark = async () => {
        polls++;
        return read();
      };
      feed.subscribe((topic) => {
        if (topic === "activities") seen.push(topic);
      });
      await until(() => polls >= 2, "the first poll");
      // Both saves stamp the same instant.
      const instant = Date.now() + 60_000;
      const saveAt = async (activity: Activity, title: string): Promise<void> => {
        mock.timers.enable({ apis: ["Date"], now: instant });
        try {
          activity.title = title;
          await activity.save();
        } finally {
          mock.timers.reset();
        }
      };
      try {
        await saveAt(second, "second, changed");
        await until(() => seen.length > 0, "a notice of the newest save");
        const before = polls;
        await until(() => polls >= before + 2, "two more polls");
        seen.length = 0;
        await saveAt(first, "first, changed in the same millisecond");
        await until(() => seen.length > 0, "a notice of the save in the same millisecond");
      } finally {
        await feed.stop();
      }
    });
  });
}

describe("the change feed on postgres, for commits out of order", () => {
  it("tells that Activities changed when a save commits after a later-stamped one, and that tasks changed when a start commits after a newer one", async () => {
    const platform = await startPlatform("postgres", { isolation: "none", worker: false });
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      const schema = (platform.runtime.driver as unknown as { schema: string }).schema;
      const uc = platform.appConnection.systemUserConnection;
      const add = (title: string): Promise<Activity> => addActivity(uc, title);
      const x = await add("x");
      const y = await add("y");
      const feed = new ChangeFeed(platform, 20);
      const seen: ChangeTopic[] = [];
      feed.subscribe((topic) => seen.push(topic));
      await sleep(100);
      // The contact x's save will name is held: x stamps its time, then waits for it.
      const contactId = uc.currentUser.contactId;
      await client.query("BEGIN");
      await client.query(`SELECT 1 FROM "${schema}"."Contact" WHERE "Id" = $1 FOR UPDATE`, [contactId]);
      x.ownerId = contactId;
      const savingX = x.save();
      await sleep(50);
      y.title = "y, stamped after x and committed before it";
      await y.save();
      await until(() => seen.includes("activities"), "a notice of y's save");
      await sleep(100);
      seen.length = 0;
      await client.query("COMMIT");
      await savingX;
      await until(() => seen.includes("activities"), "a notice of x's save, which committed after y's", 5_000);

      // A task started in a longer transaction has the lower id, and commits after a newer one.
      platform.runtime.registry.register(UsrFeedTask);
      const held = gate();
      const inserted = gate();
      const long = platform.runtime.run(() =>
        platform.appConnection.transaction(async () => {
          await Task.startNew(UsrFeedTask, {});
          inserted.open();
          await held.promise;
        }),
      );
      await inserted.promise;
      await platform.runtime.run(() => Task.startNew(UsrFeedTask, {}));
      await until(() => seen.includes("tasks"), "a notice of the second start");
      await sleep(100);
      seen.length = 0;
      held.open();
      await long;
      await until(() => seen.includes("tasks"), "a notice of the first start, which committed after the second", 5_000);
      await feed.stop();
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
      await client.end();
    }
  });
});
