/**
 * OpenTelemetry: an enqueue span and one span per attempt, joined through the trace context
 * stored with the task: here one runtime starts the task and another, with its own connection
 * to the store, runs it. With no SDK registered the calls are no-ops (the other tests).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Task, type IBackgroundTask, type TaskContext } from "../../src/index.ts";
import { until } from "../helpers.ts";
import { newStore, runtimeOn, STORES } from "../scheduling/stores.ts";

class Traced implements IBackgroundTask<{ fail: boolean }> {
  static readonly taskOptions = { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1, jitter: 0 } };
  run(p: { fail: boolean }, c: TaskContext): void {
    if (p.fail && c.attempt === 1) throw new Error("first attempt fails");
  }
}

/** Runs until it is canceled. */
class UntilCanceled implements IBackgroundTask<null> {
  static readonly taskOptions = { isolation: "none" as const };
  async run(_: null, c: TaskContext): Promise<void> {
    await new Promise<void>((resolve) => c.signal.addEventListener("abort", () => resolve(), { once: true }));
  }
}

const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();

before(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
after(() => {
  trace.disable();
  context.disable();
});

for (const store of STORES) {
  describe(`tracing (${store})`, () => {
    it("links each attempt, in the process that runs it, to the span that enqueued the task", async () => {
      exporter.reset();
      const open = newStore(store);
      const starter = await runtimeOn(open, { worker: false, maintenance: false, tasks: [Traced] });
      const runner = await runtimeOn(open, { tasks: [Traced] });
      const request = trace.getTracer("test").startSpan("POST /orders");
      const handle = await context.with(trace.setSpan(context.active(), request), () =>
        starter.run(() => Task.startNew(Traced, { fail: true })),
      );
      request.end();
      runner.worker?.wake();
      await runner.waitForTask(handle.id, { timeoutMs: 5_000 });
      const spans = exporter.getFinishedSpans();
      const enqueue = spans.find((s) => s.name === "underway.enqueue Traced");
      assert.ok(enqueue);
      assert.equal(enqueue.kind, SpanKind.PRODUCER);
      assert.equal(enqueue.spanContext().traceId, request.spanContext().traceId);
      assert.equal(enqueue.parentSpanContext?.spanId, request.spanContext().spanId);
      const attempts = spans.filter((s) => s.name === "underway.attempt Traced").sort((a, b) => Number(a.attributes["underway.task.attempt"]) - Number(b.attributes["underway.task.attempt"]));
      assert.deepEqual(
        attempts.map((s) => [s.attributes["underway.task.attempt"], s.attributes["underway.task.outcome"], s.status.code]),
        [
          [1, "failed", 2],
          [2, "succeeded", 0],
        ],
      );
      for (const a of attempts) {
        assert.equal(a.kind, SpanKind.CONSUMER);
        assert.equal(a.attributes["underway.task.id"], handle.id);
        assert.equal(a.spanContext().traceId, request.spanContext().traceId);
        assert.equal(a.parentSpanContext?.spanId, enqueue.spanContext().spanId);
        assert.equal(a.links[0]?.context.spanId, enqueue.spanContext().spanId);
      }
    });

    it("ends the span and the run-time series of an attempt canceled while it runs, as discarded", async () => {
      exporter.reset();
      const runtime = await runtimeOn(newStore(store), { tasks: [UntilCanceled] });
      const discarded: string[] = [];
      let started = false;
      runtime.on("taskStarted", () => (started = true));
      runtime.on("taskDiscarded", (e) => discarded.push(`${e.name}#${e.attempt}:${e.reason}`));
      const handle = await runtime.run(() => Task.startNew(UntilCanceled, null));
      await until(() => started, "the attempt to start");
      assert.equal(await runtime.cancelTask(handle.id), true);
      await until(() => discarded.length > 0, "the attempt to end");
      assert.deepEqual(discarded, ["UntilCanceled#1:canceled"]);
      const attempt = exporter.getFinishedSpans().find((s) => s.name === "underway.attempt UntilCanceled");
      assert.equal(attempt?.attributes["underway.task.outcome"], "discarded");
      const text = await runtime.metrics.registry.metrics();
      assert.match(text, /underway_task_run_seconds_count\{task="UntilCanceled",outcome="discarded"\} 1/);
    });
  });
}
