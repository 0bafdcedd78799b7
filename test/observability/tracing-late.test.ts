/**
 * OpenTelemetry without an SDK, then registered after the runtime started: without one the
 * runtime makes no spans, but a caller's trace (a request's, from a propagator) still goes with the
 * task; once one is registered, the next enqueue and attempt are traced, in the same runtime.
 */
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { newStore, runtimeOn } from "../scheduling/stores.ts";

class Late implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

after(() => {
  trace.disable();
  context.disable();
});

it("stores the caller's trace context with the task when no SDK is registered", async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  after(() => context.disable());
  const path = tempDb(tempDir());
  const runtime = await runtimeOn(() => new SqliteDriver({ path }), { worker: false, maintenance: false, tasks: [Late] });
  after(() => runtime.stop());
  const caller = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED, isRemote: true };
  const handle = await context.with(trace.setSpanContext(context.active(), caller), () => runtime.run(() => Task.startNew(Late, { n: 0 })));
  const plain = await runtime.run(() => Task.startNew(Late, { n: 1 }));
  const driver = new SqliteDriver({ path, watch: false });
  after(() => driver.close());
  await driver.migrate();
  const claimed = await driver.taskClaim({ workerId: "w", leaseMs: 10_000, limit: 2 });
  assert.equal(claimed.find((t) => t.id === handle.id)?.traceContext, `00-${caller.traceId}-${caller.spanId}-01`);
  assert.equal(claimed.find((t) => t.id === plain.id)?.traceContext, null);
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
