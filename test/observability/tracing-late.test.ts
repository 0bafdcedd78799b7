/**
 * OpenTelemetry registered after the runtime started: without an SDK the runtime makes no spans
 * at all; once one is registered, the next enqueue and attempt are traced, in the same runtime.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { newStore, runtimeOn } from "../scheduling/stores.ts";

class Late implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

after(() => {
  trace.disable();
  context.disable();
});

it("traces from the moment an SDK is registered, in a runtime that started without one", async () => {
  const runtime = await runtimeOn(newStore("sqlite"), { tasks: [Late] });
  after(() => runtime.stop());
  const before = await runtime.run(() => Task.startNew(Late, { n: 1 }));
  await runtime.waitForTask(before.id, { timeoutMs: 5_000 });

  const exporter = new InMemorySpanExporter();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  const traced = await runtime.run(() => Task.startNew(Late, { n: 2 }));
  await runtime.waitForTask(traced.id, { timeoutMs: 5_000 });

  const spans = exporter.getFinishedSpans();
  assert.deepEqual(spans.map((s) => s.name).sort(), ["underway.attempt Late", "underway.enqueue Late"]);
  const attempt = spans.find((s) => s.name === "underway.attempt Late")!;
  assert.equal(attempt.attributes["underway.task.id"], traced.id);
  assert.equal(attempt.parentSpanContext?.spanId, spans.find((s) => s.name === "underway.enqueue Late")!.spanContext().spanId);
});
