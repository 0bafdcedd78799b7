/**
 * What the worker's surroundings may do wrong must not cost a task: a claim that fails part way
 * through a round, a tracer or a logger that throws, a user connection that never comes, and
 * tasks that throw what the worker itself uses (TaskInterruptedError) or what cannot be asked
 * its class (a Proxy whose traps throw).
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, type ReadableSpan, type Span, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { runAsUser, Task, TaskInterruptedError, type IBackgroundTask, type TaskContext } from "../../src/index.ts";
import type { ClaimedTask, TaskClaimParams } from "../../src/store/driver.ts";
import type { Logger } from "../../src/tasks/logger.ts";
import { startRuntime, tempDir, until } from "../helpers.ts";

const dir = tempDir();

/** Throws once from the span's start or end of the next attempt, when armed. */
const tracerFault = { onStart: false, onEnd: false };
const processor: SpanProcessor = {
  onStart(span: Span): void {
    if (tracerFault.onStart && span.name.startsWith("underway.attempt")) {
      tracerFault.onStart = false;
      throw new Error("the span exporter's queue is full");
    }
  },
  onEnd(span: ReadableSpan): void {
    if (tracerFault.onEnd && span.name.startsWith("underway.attempt")) {
      tracerFault.onEnd = false;
      throw new Error("the span exporter's queue is full");
    }
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};
before(() => trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] })));
after(() => trace.disable());

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
before(() => process.on("unhandledRejection", onUnhandled));
after(() => {
  process.off("unhandledRejection", onUnhandled);
  assert.deepEqual(unhandled, [], "no promise of the worker's was left rejected unhandled");
});

class Job implements IBackgroundTask<null> {
  static runs = 0;
  run(): void {
    Job.runs++;
  }
}

class Capped implements IBackgroundTask<null> {
  static readonly taskOptions = { queue: "capped", maxAttempts: 1 };
  static runs = 0;
  run(): void {
    Capped.runs++;
  }
}

it("runs the tasks a round's earlier claims took when a later claim of the round fails", async () => {
  const runtime = await startRuntime({
    dir,
    tasks: [Capped, Job],
    worker: { concurrency: 4, queueConcurrency: { capped: 2 }, pollIntervalMs: 50 },
  });
  const driver = runtime.driver;
  const claim = driver.taskClaim.bind(driver);
  let failed = false;
  // The capped queue's claim takes the task; the claim of every other queue after it fails, once.
  driver.taskClaim = async (params: TaskClaimParams): Promise<ClaimedTask[]> => {
    if (!failed && params.excludeQueues?.includes("capped")) {
      failed = true;
      throw new Error("the connection to the store dropped");
    }
    return claim(params);
  };
  const handle = await runtime.run(() => Task.startNew(Capped, null, { delayMs: 1 }));
  const done = await handle.wait({ timeoutMs: 5_000 });
  assert.equal(failed, true, "the round's second claim failed");
  assert.equal(done.attempt, 1);
  assert.equal(Capped.runs, 1);
});

it("runs a task, and tells of its start and end, when the tracer throws as the attempt starts or ends", async () => {
  const runtime = await startRuntime({ dir, tasks: [Job], worker: { concurrency: 1, prefetch: 0 } });
  const heard: string[] = [];
  runtime.on("taskStarted", () => heard.push("started"));
  runtime.on("taskSucceeded", () => heard.push("succeeded"));
  Job.runs = 0;
  tracerFault.onStart = true;
  await (await runtime.run(() => Task.startNew(Job, null))).wait({ timeoutMs: 5_000 });
  tracerFault.onEnd = true;
  await (await runtime.run(() => Task.startNew(Job, null))).wait({ timeoutMs: 5_000 });
  assert.equal(Job.runs, 2);
  await until(() => heard.length === 4, "the events");
  assert.deepEqual(heard, ["started", "succeeded", "started", "succeeded"]);
  assert.equal(runtime.worker?.activeCount, 0, "a slot was kept");
});

it("stores outcomes, and runs nothing twice, with a logger that throws on every line", async () => {
  const throwing: Logger = {
    debug: () => {
      throw new Error("log transport closed");
    },
    info: () => {
      throw new Error("log transport closed");
    },
    warn: () => {
      throw new Error("log transport closed");
    },
    error: () => {
      throw new Error("log transport closed");
    },
    child: () => throwing,
  };
  class FailsOnce implements IBackgroundTask<null> {
    static readonly taskOptions = { backoff: { baseMs: 1, maxMs: 1, jitter: 0 } };
    static runs = 0;
    run(_: null, context: TaskContext): void {
      FailsOnce.runs++;
      context.logger.info("running");
      if (context.attempt === 1) throw new Error("first attempt fails");
    }
  }
  const runtime = await startRuntime({ dir, tasks: [FailsOnce], logger: throwing });
  const done = await (await runtime.run(() => Task.startNew(FailsOnce, null))).wait({ timeoutMs: 5_000 });
  assert.equal(done.attempt, 2);
  assert.equal(FailsOnce.runs, 2);
  assert.equal(done.errors.length, 1);
});

it("holds a task whose user connection never comes no longer than its timeout", async () => {
  class NeedsConnection implements IBackgroundTask<null> {
    static readonly taskOptions = { timeoutMs: 200, maxAttempts: 1 };
    setUserConnection(): void {}
    run(): void {}
  }
  const runtime = await startRuntime({
    dir,
    tasks: [NeedsConnection, Job],
    worker: { concurrency: 1, prefetch: 0 },
    userConnectionFactory: () => new Promise<never>(() => undefined),
  });
  const handle = await runtime.run(() => runAsUser({ userId: "u1" }, () => Task.startNewWithUserConnection(NeedsConnection, null)));
  await assert.rejects(handle.wait({ timeoutMs: 5_000 }), /ended dead/);
  assert.equal((await handle.get()).lastError?.name, "TaskTimeoutError");
  // The slot is free again.
  await (await runtime.run(() => Task.startNew(Job, null))).wait({ timeoutMs: 5_000 });
});

it("counts the attempts of a task that throws TaskInterruptedError itself, and retries a thrown Proxy whose traps throw", async () => {
  class ThrowsInterrupted implements IBackgroundTask<null> {
    static readonly taskOptions = { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1, jitter: 0 } };
    static runs = 0;
    run(): void {
      ThrowsInterrupted.runs++;
      throw new TaskInterruptedError("a nested runtime shut down");
    }
  }
  class ThrowsProxy implements IBackgroundTask<null> {
    static readonly taskOptions = { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1, jitter: 0 } };
    run(): void {
      throw new Proxy(
        {},
        {
          getPrototypeOf() {
            throw new Error("trap");
          },
        },
      );
    }
  }
  const runtime = await startRuntime({ dir, tasks: [ThrowsInterrupted, ThrowsProxy] });
  const interrupted = await runtime.run(() => Task.startNew(ThrowsInterrupted, null));
  await assert.rejects(interrupted.wait({ timeoutMs: 5_000 }), /ended dead/);
  assert.equal(ThrowsInterrupted.runs, 2);
  assert.equal((await interrupted.get()).attempt, 2);
  const proxy = await runtime.run(() => Task.startNew(ThrowsProxy, null));
  await assert.rejects(proxy.wait({ timeoutMs: 5_000 }), /ended dead/);
  assert.equal((await proxy.get()).attempt, 2, "retried as any failure");
});

it("stops within a lease when the store stops answering a claim or the last outcomes' write", async () => {
  class Quick implements IBackgroundTask<null> {
    static runs = 0;
    run(): void {
      Quick.runs++;
    }
  }
  const logged: string[] = [];
  const quiet = (): void => undefined;
  const logger = {
    error: (_fields: object, message: string) => void logged.push(message),
    warn: quiet,
    info: quiet,
    debug: quiet,
    trace: quiet,
    fatal: quiet,
    child: () => logger,
  } as unknown as Logger;
  for (const hung of ["taskCompleteMany", "taskClaim"] as const) {
    const runtime = await startRuntime({ dir, tasks: [Quick], logger, worker: { leaseMs: 300, heartbeatMs: 100, pollIntervalMs: 50 } });
    const driver = runtime.driver;
    const real = driver[hung].bind(driver) as (...args: unknown[]) => Promise<unknown>;
    let hang = true;
    (driver as unknown as Record<string, unknown>)[hung] = (...args: unknown[]) => (hang ? new Promise(() => undefined) : real(...args));
    const before = Quick.runs;
    const claims = driver.taskClaim;
    let claiming = 0;
    if (hung === "taskClaim") {
      driver.taskClaim = (params) => {
        claiming++;
        return claims(params);
      };
    }
    // Not handed over at its start (delayed): claimed, or, with claims answered, run and written.
    await runtime.run(() => Task.startNew(Quick, null, { delayMs: 1 }));
    if (hung === "taskCompleteMany") await until(() => Quick.runs === before + 1, "the task to run");
    else await until(() => claiming > 0, "a claim to be on its way");
    const started = performance.now();
    await runtime.worker?.stop({ graceMs: 0 });
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 2_000, `${hung}: stop() took ${Math.round(took)} ms`);
    hang = false;
  }
  assert.ok(logged.some((m) => m.startsWith("stop: the store did not answer the last outcomes' write")));
  assert.ok(logged.some((m) => m.startsWith("stop: a claim got no answer from the store")));
});
