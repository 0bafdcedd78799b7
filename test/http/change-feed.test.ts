/**
 * The change feed behind the pages' event streams: one poll at a time however listeners come and
 * go, and a notice when tasks change.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ChangeFeed, type ChangeTopic } from "../../src/http/change-feed.ts";
import { Task } from "../../src/index.ts";
import { gate, until } from "../helpers.ts";
import { startPlatform } from "../platform/helpers.ts";

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
