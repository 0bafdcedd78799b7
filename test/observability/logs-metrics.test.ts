/**
 * Structured logs of a task's context logger, and the Prometheus metrics at /metrics, on both
 * stores.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import pino from "pino";
import { createHttpServer } from "../../src/http/server.ts";
import { STORE_CHECK_LIMIT_MS } from "../../src/observability/time-limit.ts";
import { runAsUser, Task, type IBackgroundTask, type IUserConnectionRequired, type TaskContext, type UserConnectionLike } from "../../src/index.ts";
import { settledWithinMockedMs, until } from "../helpers.ts";
import { newStore, runtimeOn, STORES } from "../scheduling/stores.ts";

/** The exposition text of the runtime's /metrics. */
async function scrape(app: Awaited<ReturnType<typeof createHttpServer>>): Promise<string> {
  return (await app.inject({ method: "GET", url: "/metrics" })).body;
}

class Chatty implements IBackgroundTask<{ order: string }>, IUserConnectionRequired {
  setUserConnection(): void {}
  run(p: { order: string }, context: TaskContext): void {
    context.logger.info({ order: p.order }, "working on it");
    context.logger.warn("almost done");
  }
}

class Ok implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

class Broken implements IBackgroundTask<{ n: number }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): void {
    throw new Error("broken");
  }
}

/** Holds its slot until the worker stops it. */
class Holds implements IBackgroundTask<Record<string, never>> {
  async run(_p: Record<string, never>, context: TaskContext): Promise<void> {
    await new Promise<void>((resolve) => context.signal.addEventListener("abort", () => resolve()));
  }
}

/** Registered with the producer only: to the worker's runtime, a stored row's name no class has. */
class Stray implements IBackgroundTask<Record<string, never>> {
  run(): void {}
}

class BrokenForUser extends Broken implements IUserConnectionRequired {
  setUserConnection(): void {}
}

/** A pino logger whose JSON lines are collected. */
function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

for (const store of STORES) {
  describe(`logs and metrics (${store})`, () => {
    it("puts task id, type, attempt and user on every line a task logs through its context", async () => {
      const { logger, lines } = capture();
      const runtime = await runtimeOn(newStore(store), {
        tasks: [Chatty],
        logger,
        userConnectionFactory: (initiator): UserConnectionLike => ({ currentUser: { id: initiator.userId } }),
      });
      const handle = await runtime.run(() => runAsUser({ userId: "u-42" }, () => Task.startNewWithUserConnection(Chatty, { order: "A-1" })));
      await handle.wait({ timeoutMs: 5_000 });
      const own = lines.filter((l) => l.msg === "working on it" || l.msg === "almost done");
      assert.equal(own.length, 2);
      for (const line of own) {
        assert.equal(line.taskId, handle.id);
        assert.equal(line.task, "Chatty");
        assert.equal(line.attempt, 1);
        assert.equal(line.userId, "u-42");
      }
      assert.equal(own[0]?.order, "A-1");
    });

    it("the worker's own line about a failed attempt names the task's user too", async () => {
      const { logger, lines } = capture();
      const runtime = await runtimeOn(newStore(store), {
        tasks: [BrokenForUser],
        logger,
        userConnectionFactory: (initiator): UserConnectionLike => ({ currentUser: { id: initiator.userId } }),
      });
      const handle = await runtime.run(() => runAsUser({ userId: "u-7" }, () => Task.startNewWithUserConnection(BrokenForUser, { n: 1 })));
      await assert.rejects(handle.wait({ timeoutMs: 5_000 }));
      const failed = lines.filter((l) => l.msg === "task failed; no attempts left");
      assert.equal(failed.length, 1);
      assert.equal(failed[0]?.taskId, handle.id);
      assert.equal(failed[0]?.task, "BrokenForUser");
      assert.equal(failed[0]?.attempt, 1);
      assert.equal(failed[0]?.userId, "u-7");
    });

    it("serves counters, histograms and queue depth at /metrics", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Ok, Broken] });
      const app = await createHttpServer({ runtime, webRoot: false });
      try {
        const ok = await runtime.run(() => Task.startNew(Ok, { n: 1 }));
        const broken = await runtime.run(() => Task.startNew(Broken, { n: 1 }));
        await ok.wait({ timeoutMs: 5_000 });
        await assert.rejects(broken.wait({ timeoutMs: 5_000 }));
        await runtime.run(() => Task.startNewMany(Ok, [{ n: 2 }, { n: 3 }], { delayMs: 3_600_000, queue: "later" }));
        const response = await app.inject({ method: "GET", url: "/metrics" });
        assert.equal(response.statusCode, 200);
        assert.match(String(response.headers["content-type"]), /^text\/plain/);
        const text = response.body;
        const value = (series: string): number | undefined => {
          const line = text.split("\n").find((l) => l.startsWith(`${series} `));
          return line === undefined ? undefined : Number(line.slice(series.length + 1));
        };
        assert.equal(value('underway_tasks_enqueued_total{task="Ok"}'), 3);
        assert.equal(value('underway_tasks_started_total{task="Ok"}'), 1);
        assert.equal(value('underway_tasks_started_total{task="Broken"}'), 1);
        assert.equal(value('underway_tasks_succeeded_total{task="Ok"}'), 1);
        assert.equal(value('underway_tasks_dead_total{task="Broken"}'), 1);
        assert.equal(value('underway_task_pickup_latency_seconds_count{task="Ok"}'), 1);
        assert.equal(value('underway_task_run_seconds_count{task="Ok",outcome="succeeded"}'), 1);
        assert.equal(value('underway_task_run_seconds_count{task="Broken",outcome="dead"}'), 1);
        assert.equal(value('underway_queue_depth{queue="later",state="later"}'), 2);
        assert.equal(value('underway_queue_depth{queue="later",state="due"}'), 0);
        // Moving the clock makes them due: the depth is read when scraped.
        runtime.driver.clockShift(3_600_000);
        await runtime.worker?.stop({ graceMs: 0 });
        const again = await scrape(app);
        assert.match(again, /^underway_queue_depth\{queue="later",state="due"\} 2$/m);
        // Counters keep their totals from one scrape to the next: counted once, not again.
        assert.match(again, /^underway_tasks_enqueued_total\{task="Ok"\} 3$/m);
        assert.match(again, /^underway_tasks_succeeded_total\{task="Ok"\} 1$/m);
        await runtime.run(() => Task.startNew(Ok, { n: 4 }));
        const third = await scrape(app);
        assert.match(third, /^underway_tasks_enqueued_total\{task="Ok"\} 4$/m);
        // A queue that empties reads 0, rather than leaving the scrape.
        const later = await runtime.listTasks({ queue: "later", limit: 10 });
        for (const t of later.items) await runtime.cancelTask(t.id);
        const emptied = await scrape(app);
        for (const state of ["due", "later", "running"]) assert.match(emptied, new RegExp(`^underway_queue_depth\\{queue="later",state="${state}"\\} 0$`, "m"));
      } finally {
        await app.close();
      }
    });

    it("shows a registered task's counters at 0 before it counts, and for a name no class has only what it counted", async () => {
      const open = newStore(store);
      const producer = await runtimeOn(open, { tasks: [Stray], worker: false });
      const runtime = await runtimeOn(open, { tasks: [Ok], worker: { pollIntervalMs: 10 } });
      const app = await createHttpServer({ runtime, webRoot: false });
      const counters = (text: string, task: string): string[] =>
        text.split("\n").filter((l) => l.startsWith("underway_tasks_") && l.includes(`{task="${task}"}`)).sort();
      try {
        assert.deepEqual(counters(await scrape(app), "Ok"), ["dead", "enqueued", "failed", "started", "succeeded"].map((c) => `underway_tasks_${c}_total{task="Ok"} 0`));
        const stray = await producer.run(() => Task.startNew(Stray, {}));
        await until(async () => (await runtime.getTask(stray.id)).state === "failed", "the unknown task's failure");
        const text = await scrape(app);
        assert.deepEqual(counters(text, "Stray"), ['underway_tasks_failed_total{task="Stray"} 1', 'underway_tasks_started_total{task="Stray"} 1']);
        assert.match(text, /^underway_tasks_started_total\{task="Ok"\} 0$/m);
      } finally {
        await app.close();
      }
    });

    it("times only attempts that ran: tasks handed back from the worker's hold are released, not timed", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Ok, Holds], worker: { concurrency: 1 } });
      const released: string[] = [];
      runtime.on("taskReleased", (e) => released.push(e.name));
      const app = await createHttpServer({ runtime, webRoot: false });
      try {
        const holding = await runtime.run(() => Task.startNew(Holds, {}));
        await until(async () => (await runtime.getTask(holding.id)).state === "running", "the slot to be taken");
        // Claimed behind it, held ahead of the one slot: never started.
        const held = await runtime.run(() => Task.startNewMany(Ok, [{ n: 1 }, { n: 2 }, { n: 3 }]));
        await until(async () => (await Promise.all(held.map((h) => runtime.getTask(h.id)))).some((t) => t.state === "running"), "a task to be held ahead");
        await runtime.worker?.stop({ graceMs: 0 });
        assert.ok(released.includes("Ok"), `released: ${released.join(", ")}`);
        assert.ok(released.includes("Holds"), `released: ${released.join(", ")}`);
        const text = await scrape(app);
        assert.doesNotMatch(text, /^underway_task_run_seconds_count\{task="Ok",outcome="released"\}/m);
        // Ok's counter may read 0 (a registered class's counters show from the first scrape): no attempt of it started.
        assert.doesNotMatch(text, /^underway_tasks_started_total\{task="Ok"\} [1-9]/m);
        // The one that ran and was interrupted is timed.
        assert.match(text, /^underway_task_run_seconds_count\{task="Holds",outcome="released"\} 1$/m);
      } finally {
        await app.close();
      }
    });

    it("serves the process's own counts when the store cannot be read, with underway_store_up 0", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Ok], worker: false });
      await runtime.run(() => Task.startNew(Ok, { n: 1 }));
      const app = await createHttpServer({ runtime, webRoot: false });
      const driver = runtime.driver as { taskQueueDepth: typeof runtime.driver.taskQueueDepth };
      const read = driver.taskQueueDepth;
      try {
        assert.match(await scrape(app), /^underway_store_up 1$/m);
        // The store stops answering (a failover, a full disk): this read fails as it would.
        driver.taskQueueDepth = () => Promise.reject(new Error("connect ECONNREFUSED 10.0.0.5:5432"));
        const response = await app.inject({ method: "GET", url: "/metrics" });
        assert.equal(response.statusCode, 200);
        assert.match(response.body, /^underway_store_up 0$/m);
        assert.match(response.body, /^underway_tasks_enqueued_total\{task="Ok"\} 1$/m);
        assert.doesNotMatch(response.body, /^underway_queue_depth\{/m);
        assert.doesNotMatch(response.body, /10\.0\.0\.5/);
        driver.taskQueueDepth = read;
        const back = await scrape(app);
        assert.match(back, /^underway_store_up 1$/m);
        assert.match(back, /^underway_queue_depth\{queue="default",state="due"\} 1$/m);
      } finally {
        driver.taskQueueDepth = read;
        await app.close();
      }
    });

    it("answers a scrape within the store check's limit when the store hangs, and asks a hung store once", async (t) => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Ok], worker: false });
      await runtime.run(() => Task.startNew(Ok, { n: 1 }));
      const app = await createHttpServer({ runtime, webRoot: false });
      const driver = runtime.driver as { taskQueueDepth: typeof runtime.driver.taskQueueDepth };
      const read = driver.taskQueueDepth;
      try {
        // A store that never answers (packets dropped on the way): the clock is moved, not waited for.
        let asked = 0;
        driver.taskQueueDepth = () => {
          asked++;
          return new Promise(() => undefined);
        };
        t.mock.timers.enable({ apis: ["setTimeout"] });
        for (let scrapeNo = 0; scrapeNo < 2; scrapeNo++) {
          const response = await settledWithinMockedMs(t.mock.timers, app.inject({ method: "GET", url: "/metrics" }), STORE_CHECK_LIMIT_MS + 1_000, "the scrape");
          assert.equal(response.statusCode, 200);
          assert.match(response.body, /^underway_store_up 0$/m);
          assert.match(response.body, /^underway_tasks_enqueued_total\{task="Ok"\} 1$/m);
        }
        assert.equal(asked, 1, "the second scrape asked the hung store again");
      } finally {
        t.mock.timers.reset();
        driver.taskQueueDepth = read;
        await app.close();
      }
    });

    it("counts the starts of a runtime without a worker before its first scrape", async () => {
      const runtime = await runtimeOn(newStore(store), { tasks: [Ok], worker: false });
      await runtime.run(() => Task.startNew(Ok, { n: 1 }));
      await runtime.run(() => Task.startNewMany(Ok, [{ n: 2 }, { n: 3 }]));
      const app = await createHttpServer({ runtime, webRoot: false });
      try {
        const first = await scrape(app);
        assert.match(first, /^underway_tasks_enqueued_total\{task="Ok"\} 3$/m);
        await runtime.run(() => Task.startNew(Ok, { n: 4 }));
        const second = await scrape(app);
        assert.match(second, /^underway_tasks_enqueued_total\{task="Ok"\} 4$/m);
      } finally {
        await app.close();
      }
    });
  });
}
