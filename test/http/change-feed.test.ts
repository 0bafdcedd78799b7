/**
 * The change feed behind the pages' event streams: one poll at a time however listeners come and
 * go, and a notice when tasks change.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ChangeFeed, type ChangeTopic } from "../../src/http/change-feed.ts";
import { Task } from "../../src/index.ts";
import { Activity } from "../../src/platform/entities/activity.ts";
import { gate, until } from "../helpers.ts";
import { STORES, startPlatform } from "../platform/helpers.ts";

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
      const add = async (title: string): Promise<Activity> => {
        const activity = new Activity(uc);
        activity.setDefColumnValues();
        activity.title = title;
        await activity.save();
        return activity;
      };
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
  });
}
