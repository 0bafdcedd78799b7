/**
 * Recurring tasks on both stores: ticks fire once each, across nodes and leader changes; missed
 * ticks follow their policy; pause and resume; bad definitions are refused clearly. The database
 * clock is moved (clockShift) and the scheduler driven with runOnce(): nothing sleeps.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import type { IBackgroundTask, Runtime } from "../../src/index.ts";
import { newStore, runtimeOn, STORES } from "./stores.ts";

const MINUTE = 60_000;

const runs: string[] = [];

class Heartbeat implements IBackgroundTask<{ label: string }> {
  run(p: { label: string }): void {
    runs.push(p.label);
  }
}

const every5 = (name: string, missed: "once" | "skip" = "once") => ({
  name,
  cron: "*/5 * * * *",
  timeZone: "UTC",
  task: Heartbeat,
  parameters: { label: name },
  missed,
});

/** Moves the clock of every runtime's store to just after the schedule's next tick. */
async function toNextTick(name: string, ...runtimes: Runtime[]): Promise<number> {
  const [first] = runtimes;
  assert.ok(first);
  const schedule = (await first.listSchedules()).find((s) => s.name === name);
  const next = schedule?.nextRunAt?.getTime();
  assert.ok(next, `schedule ${name} has a next tick`);
  const shift = next - (await first.driver.clockNow()) + 1_000;
  for (const r of runtimes) r.driver.clockShift(shift);
  return next;
}

async function scheduledTasks(runtime: Runtime, name: string) {
  return (await runtime.listTasks({ name: "Heartbeat", limit: 1000 })).items.filter((t) => t.scheduleName === name);
}

for (const store of STORES) {
  describe(`cron schedules (${store})`, () => {
    it("fires each tick once, and the worker runs the task", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Heartbeat], schedules: [every5("beat")] });
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 0, skipped: 0 }); // not due yet
      const tick = await toNextTick("beat", runtime);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 0, skipped: 0 });
      const [task] = await scheduledTasks(runtime, "beat");
      assert.ok(task);
      await runtime.waitForTask(task.id, { timeoutMs: 5_000 });
      assert.ok(runs.includes("beat"));
      const [schedule] = await runtime.listSchedules();
      assert.equal(schedule?.lastTick?.getTime(), tick);
      assert.equal(schedule?.lastTaskId, task.id);
      assert.equal(schedule?.nextRunAt?.getTime(), tick + 5 * MINUTE);
    });

    it("logs each firing with the schedule, the tick and the task it started", async () => {
      const lines: Record<string, unknown>[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
      const runtime = await runtimeOn(newStore(store), { worker: false, logger, tasks: [Heartbeat], schedules: [every5("logged")] });
      const tick = await toNextTick("logged", runtime);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
      const [task] = await scheduledTasks(runtime, "logged");
      const fired = lines.filter((l) => l.msg === "schedule fired");
      assert.equal(fired.length, 1);
      assert.equal(fired[0]?.schedule, "logged");
      assert.equal(fired[0]?.tick, new Date(tick).toISOString());
      assert.equal(fired[0]?.taskId, task?.id);
      assert.equal(fired[0]?.task, "Heartbeat");
    });

    it("pauses a schedule whose stored cron or time zone cannot be read (a row changed by hand), saying so once, and fires the others", async () => {
      const lines: Record<string, unknown>[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
      const runtime = await runtimeOn(newStore(store), { worker: false, logger, tasks: [Heartbeat], schedules: [every5("good"), every5("badcron"), every5("badzone")] });
      const p = (n: number) => (store === "postgres" ? `$${n}` : "?");
      await runtime.transaction(async (tx) => {
        await tx.execute(`UPDATE underway_schedules SET cron = ${p(1)} WHERE name = ${p(2)}`, ["not a cron", "badcron"]);
        await tx.execute(`UPDATE underway_schedules SET time_zone = ${p(1)} WHERE name = ${p(2)}`, ["Mars/Phobos", "badzone"]);
      });
      await toNextTick("good", runtime);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 0, skipped: 0 });
      const paused = lines.filter((l) => l.msg === "a schedule's stored cron expression or time zone cannot be read; the schedule is paused");
      assert.deepEqual(paused.map((l) => l.schedule).sort(), ["badcron", "badzone"], "each said once");
      const schedules = await runtime.listSchedules();
      assert.deepEqual(
        schedules.map((s) => [s.name, s.paused]).sort(),
        [["badcron", true], ["badzone", true], ["good", false]],
      );
    });

    it("fires one task per tick with two nodes trying at once, through leader changes", async () => {
      const open = newStore(store);
      const a = await runtimeOn(open, { worker: false, tasks: [Heartbeat], schedules: [every5("shared")] });
      const b = await runtimeOn(open, { worker: false, tasks: [Heartbeat], schedules: [every5("shared")] });
      const ticks: number[] = [];
      for (let i = 0; i < 6; i++) {
        ticks.push(await toNextTick("shared", a, b));
        // Both passes run at once, as when a deposed leader has not noticed yet.
        const passes = await Promise.all([a.scheduler?.runOnce(), b.scheduler?.runOnce()]);
        assert.equal(passes.reduce((n, p) => n + (p?.fired ?? 0), 0), 1, `tick ${i}: one task`);
      }
      const tasks = await scheduledTasks(a, "shared");
      assert.equal(tasks.length, 6);
      const [schedule] = await b.listSchedules();
      assert.equal(schedule?.lastTick?.getTime(), ticks[5]);
    });

    it("runs missed ticks once after downtime, or skips them, as each schedule says", async () => {
      const runtime = await runtimeOn(newStore(store), {
        worker: false,
        tasks: [Heartbeat],
        schedules: [every5("catch-up", "once"), every5("drop", "skip")],
      });
      const first = await toNextTick("catch-up", runtime);
      runtime.driver.clockShift(62 * MINUTE); // down for an hour: 12 ticks passed, the latest 2 minutes ago
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 1 });
      assert.equal((await scheduledTasks(runtime, "catch-up")).length, 1);
      assert.equal((await scheduledTasks(runtime, "drop")).length, 0);
      const now = await runtime.driver.clockNow();
      for (const s of await runtime.listSchedules()) {
        const next = s.nextRunAt?.getTime() ?? 0;
        assert.ok(next > now && next - now <= 5 * MINUTE, `${s.name} goes on from the next tick after now`);
        // The catch-up run stands for the latest missed tick; skipped ticks leave no trace.
        assert.equal(s.lastTick?.getTime() ?? null, s.name === "catch-up" ? first + 60 * MINUTE : null);
      }
      // Back to normal: both fire their next tick.
      await toNextTick("drop", runtime);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 2, skipped: 0 });
    });

    it("folds the ticks since the last pass into the latest, and misses none while it is on time", async () => {
      const runtime = await runtimeOn(newStore(store), {
        worker: false,
        tasks: [Heartbeat],
        // Every 2 s, looked at every 5 s: 2 or 3 ticks come between passes.
        schedules: [{ ...every5("fast-skip", "skip"), cron: "*/2 * * * * *" }],
      });
      await toNextTick("fast-skip", runtime);
      for (let pass = 0; pass < 5; pass++) {
        runtime.driver.clockShift(5_000);
        assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 }, `pass ${pass}`);
      }
      // Down for an hour with the latest tick a moment ago: it is on time, and runs.
      runtime.driver.clockShift(60 * MINUTE);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
    });

    it("counts a single tick seen too late as missed", async () => {
      const runtime = await runtimeOn(newStore(store), {
        worker: false,
        tasks: [Heartbeat],
        schedules: [{ ...every5("daily-skip", "skip"), cron: "0 2 * * *" }],
        maintenance: { missedAfterMs: 10 * MINUTE },
      });
      await toNextTick("daily-skip", runtime);
      runtime.driver.clockShift(15 * MINUTE); // one tick due, 15 minutes late
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 0, skipped: 1 });
    });

    it("leaves a schedule that is not paused as it is when resumed: a missed tick stays due", async () => {
      const runtime = await runtimeOn(newStore(store), { worker: false, tasks: [Heartbeat], schedules: [every5("running")] });
      await toNextTick("running", runtime);
      runtime.driver.clockShift(2 * MINUTE); // the tick is due: every node was down when it came
      assert.equal(await runtime.resumeSchedule("running"), false);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
    });

    it("pauses and resumes a schedule; ticks while paused are not made up for", async () => {
      const runtime = await runtimeOn(newStore(store), { worker: false, tasks: [Heartbeat], schedules: [every5("pausable")] });
      await runtime.pauseSchedule("pausable");
      assert.equal((await runtime.listSchedules())[0]?.paused, true);
      await toNextTick("pausable", runtime);
      runtime.driver.clockShift(30 * MINUTE);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 0, skipped: 0 });
      await runtime.resumeSchedule("pausable");
      const [resumed] = await runtime.listSchedules();
      assert.equal(resumed?.paused, false);
      assert.ok((resumed?.nextRunAt?.getTime() ?? 0) > (await runtime.driver.clockNow()));
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 0, skipped: 0 });
      await toNextTick("pausable", runtime);
      assert.deepEqual(await runtime.scheduler?.runOnce(), { fired: 1, skipped: 0 });
      // A restart with the same definition keeps the schedule's state.
      await runtime.pauseSchedule("pausable");
      await runtime.defineSchedule(every5("pausable"));
      assert.equal((await runtime.listSchedules())[0]?.paused, true);
    });
  });
}

describe("cron schedules: definitions", () => {
  it("reads the expression in the schedule's time zone", async () => {
    const runtime = await runtimeOn(newStore("sqlite"), {
      worker: false,
      tasks: [Heartbeat],
      schedules: [{ ...every5("berlin"), cron: "30 2 * * *", timeZone: "Europe/Berlin" }],
    });
    const next = (await runtime.listSchedules())[0]?.nextRunAt;
    assert.ok(next);
    const local = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(next);
    assert.equal(local, "02:30");
  });

  it("refuses bad definitions and unknown schedules, naming what was wrong", async () => {
    const runtime = await runtimeOn(newStore("sqlite"), { worker: false, tasks: [Heartbeat] });
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), cron: "61 * * * *" }), /schedule "bad": bad cron expression "61 \* \* \* \*": .*minute/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), cron: "every day" }), /schedule "bad": bad cron expression "every day"/);
    // Expressions that can never fire: the 31st of February, and a 7th field (a year) in the past.
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), cron: "0 0 31 2 *" }), /schedule "bad": the cron expression "0 0 31 2 \*" never fires/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), cron: "0 0 0 1 1 * 2020" }), /schedule "bad": bad cron expression "0 0 0 1 1 \* 2020"/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), timeZone: "Mars/Olympus" }), /schedule "bad": unknown time zone "Mars\/Olympus"; use an IANA name/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), missed: "twice" as never }), /schedule "bad": missed must be "once" or "skip", got "twice"/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), options: { timeoutMs: 3_000_000_000 } }), /schedule "bad": options.timeoutMs must be .* <= 2147483647/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad"), options: { maxAttempts: 1e300 } }), /schedule "bad": options.maxAttempts must be an integer >= 1 and <= 1000000/);
    await assert.rejects(runtime.defineSchedule({ ...every5("bad name!") }), /a schedule's name must be 1-200 letters/);
    await runtime.defineSchedule(every5("real"));
    await assert.rejects(runtime.pauseSchedule("nope"), /no schedule named "nope"; schedules: real/);
    await assert.rejects(runtime.resumeSchedule("nope"), /no schedule named "nope"/);
    await assert.rejects(runtime.deleteSchedule("nope"), /no schedule named "nope"/);
    await runtime.deleteSchedule("real");
    assert.deepEqual(await runtime.listSchedules(), []);
  });
});
