/**
 * OpenTelemetry spans through @opentelemetry/api only: without an SDK configured by the
 * application every call is a no-op. The enqueue span's context is stored with the task as a W3C
 * traceparent, so each attempt's span, in whatever process claims it, joins that trace (as its
 * child, with a link to it as the messaging conventions suggest).
 *
 * The API is loaded only once something is registered with it (an SDK, a context manager): until
 * then it could only hand out no-ops, and loading it costs every task thread about 15 ms of its
 * boot. Every copy of the API registers in one global under a key of its major version, which is
 * what the API itself reads.
 * Layer: beside worker/ and maintenance/.
 */
import { createRequire } from "node:module";
import type * as OpenTelemetry from "@opentelemetry/api";
import type { Span, SpanContext } from "@opentelemetry/api";

const TRACER = "underway";

/** Where the API (1.x, the version this package depends on) keeps what is registered with it. */
const REGISTERED = Symbol.for("opentelemetry.js.api.1");

let loaded: { readonly api: typeof OpenTelemetry; readonly noSdk: OpenTelemetry.TracerProvider } | null = null;
/** The API could not be loaded: no tracing (said once). */
let unavailable = false;

/** The API, once anything is registered with it (null before: every call of it would be a no-op). */
function registeredApi(): typeof loaded {
  if (loaded || unavailable) return loaded;
  if ((globalThis as Record<symbol, unknown>)[REGISTERED] === undefined) return null;
  let api: typeof OpenTelemetry;
  try {
    api = createRequire(import.meta.url)("@opentelemetry/api") as typeof OpenTelemetry;
  } catch (error) {
    // Tracing is not worth failing a start or an attempt for.
    unavailable = true;
    process.emitWarning(`underway: no tracing: @opentelemetry/api could not be loaded (${(error as Error).message})`);
    return null;
  }
  // What a tracer provider without an SDK behind it hands out (the API's no-op one).
  loaded = { api, noSdk: new api.ProxyTracerProvider().getDelegate() };
  return loaded;
}

/**
 * The API when an SDK is registered: without one every span is a no-op, and the spans of an
 * attempt (made thousands of times a second) are not made at all. Asked at each span, so an SDK
 * registered later traces from then on.
 */
function tracing(): typeof OpenTelemetry | null {
  const registered = registeredApi();
  if (!registered) return null;
  const { api, noSdk } = registered;
  const provider = api.trace.getTracerProvider();
  return provider instanceof api.ProxyTracerProvider && provider.getDelegate() === noSdk ? null : api;
}

/** W3C traceparent of a span context; null when it is not valid (no SDK: the no-op span). */
export function traceparentOf(api: typeof OpenTelemetry, spanContext: SpanContext): string | null {
  if (!api.trace.isSpanContextValid(spanContext)) return null;
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & api.TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, "0")}`;
}

/** The span context a traceparent stands for; null when it is not one. */
export function spanContextOf(api: typeof OpenTelemetry, traceparent: string | null | undefined): SpanContext | null {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent ?? "");
  if (!match) return null;
  const spanContext = { traceId: match[1] as string, spanId: match[2] as string, traceFlags: parseInt(match[3] as string, 16), isRemote: true };
  return api.trace.isSpanContextValid(spanContext) ? spanContext : null;
}

/**
 * Runs `insert` inside an enqueue span; `insert` receives the traceparent to store with the tasks
 * (null without an SDK).
 */
export async function withEnqueueSpan<T>(names: readonly string[], insert: (traceparent: string | null) => Promise<T>): Promise<T> {
  // No SDK here: no span, but the caller's trace (a request's, given by a propagator) still goes
  // with the task, as the no-op span would carry it, for a worker that traces.
  const api = tracing();
  if (!api) {
    const registered = registeredApi();
    if (!registered) return insert(null);
    const caller = registered.api.trace.getSpanContext(registered.api.context.active());
    return insert(caller ? traceparentOf(registered.api, caller) : null);
  }
  const { context, trace, SpanKind } = api;
  const first = names[0] ?? "task";
  const span = trace.getTracer(TRACER).startSpan(`underway.enqueue ${first}`, {
    kind: SpanKind.PRODUCER,
    attributes: { "messaging.system": "underway", "messaging.operation.type": "send", "underway.task.name": first, "messaging.batch.message_count": names.length },
  });
  try {
    return await context.with(trace.setSpan(context.active(), span), () => insert(traceparentOf(api, span.spanContext())));
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}

/** Spans of the attempts running in this process, by task id and attempt. */
export class AttemptSpans {
  private readonly open = new Map<string, Span>();

  started(task: { taskId: string; name: string; attempt: number; traceContext?: string | null | undefined }): void {
    const api = tracing();
    if (!api) return;
    const { context, trace, SpanKind } = api;
    const producer = spanContextOf(api, task.traceContext);
    const parent = producer ? trace.setSpanContext(context.active(), producer) : context.active();
    const span = trace.getTracer(TRACER).startSpan(
      `underway.attempt ${task.name}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: { "messaging.system": "underway", "messaging.operation.type": "process", "underway.task.id": task.taskId, "underway.task.name": task.name, "underway.task.attempt": task.attempt },
        ...(producer ? { links: [{ context: producer }] } : {}),
      },
      parent,
    );
    this.open.set(`${task.taskId}#${task.attempt}`, span);
  }

  ended(task: { taskId: string; attempt: number }, outcome: "succeeded" | "failed" | "dead" | "released" | "discarded", error?: { name: string; message: string }): void {
    if (this.open.size === 0) return;
    const key = `${task.taskId}#${task.attempt}`;
    const span = this.open.get(key);
    if (!span) return;
    this.open.delete(key);
    span.setAttribute("underway.task.outcome", outcome);
    if (error) {
      span.recordException({ name: error.name, message: error.message });
      // A span was made: the API is loaded.
      if (loaded) span.setStatus({ code: loaded.api.SpanStatusCode.ERROR, message: error.message });
    }
    span.end();
  }
}
