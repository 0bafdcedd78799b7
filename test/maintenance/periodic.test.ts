/** A maintenance duty: no pass begins once it is stopped, whoever nudges it. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { PeriodicDuty } from "../../src/maintenance/periodic.ts";
import { createLogger } from "../../src/runtime/logger.ts";

class CountingDuty extends PeriodicDuty<void> {
  passes = 0;
  constructor() {
    super({ logger: createLogger(false), intervalMs: 60_000, failure: "failed" });
  }
  runOnce(): Promise<void> {
    this.passes++;
    return Promise.resolve();
  }
}

it("runs a pass when nudged, none after it stopped (an election won during the stop), and again once restarted", async () => {
  const duty = new CountingDuty();
  duty.start();
  duty.nudge();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(duty.passes, 1);
  await duty.stop();
  duty.nudge();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(duty.passes, 1, "a pass ran after stop");
  duty.start(true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(duty.passes, 2);
  await duty.stop();
});
