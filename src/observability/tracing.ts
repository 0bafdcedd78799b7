/**
 * OpenTelemetry spans through @opentelemetry/api only: without an SDK configured by the
 * application every call is a no-op. The enqueue span's context is stored with the task as a W3C
 * traceparent, so each attempt's span, in whatever process claims it, joins that trace (as its
 * child, with a link to it as the messaging conventions suggest).
 * Layer: beside worker/ and maintenance/.
 */
import { context, ProxyTracerProvider, SpanKind, SpanStatusCode, trace, TraceFlags, type Span, type SpanContext } from "@opentelemetry/api";

const TRACER = "underway";

/** What a tracer provider without an SDK behind it hands out (the API's no-op one). */
const NO_SDK = new ProxyTracerProvider().getDelegate();

/**
 * Whether an SDK is registered: without one every span is a no-op, and the spans of an attempt
 * (made thousands of times a second) are not made at all. Asked at each span, so an SDK
 * registered later traces from then on.
 */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider && provider.getDelegate() === NO_SDK);
}

/** W3C traceparent of a span context; null when it is not valid (no SDK: the no-op span). */
export function traceparentOf(spanContext: SpanContext): string | null {
  if (!trace.isSpanContextValid(spanContext)) return null;
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, "0")}`;
}

/** The span context a traceparent stands for; null when it is not one. */
export function spanContextOf(traceparent: string | null | undefined): SpanContext | null {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent ?? "");
  if (!match) return null;
  const spanContext = { traceId: match[1] as string, spanId: match[2] as string, traceFlags: parseInt(match[3] as string, 16), isRemote: true };
  return trace.isSpanContextValid(spanContext) ? spanContext : null;
}

/**
 * Runs `insert` inside an enqueue span; `insert` receives the traceparent to store with the tasks
 * (null without an SDK).
 */
export async function withEnqueueSpan<T>(names: readonly string[], insert: (traceparent: string | null) => Promise<T>): Promise<T> {
  // No SDK here: no span, but the caller's trace (a request's, given by a propagator) still goes
  // with the task, as the no-op span would carry it, for a worker that traces.
  if (!tracing()) {
    const caller = trace.getSpanContext(context.active());
    return insert(caller ? traceparentOf(caller) : null);
  }
  const first = names[0] ?? "task";
  const span = trace.getTracer(TRACER).startSpan(`underway.enqueue ${first}`, {
    kind: SpanKind.PRODUCER,
    attributes: { "messaging.system": "underway", "messaging.operation.type": "send", "underway.task.name": first, "messaging.batch.message_count": names.length },
  });
  try {
    return await context.with(trace.setSpan(context.active(), span), () => insert(traceparentOf(span.spanContext())));
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}

/** Spans of the attempts running in this process, by task id and attempt. */
export class AttemptSpans {
  private readonly open = new Map<string, Span>();

  started(task: { taskId: string; name: string; attempt: number; traceContext?: string | null | undefined }): void {
    if (!tracing()) return;
    const producer = spanContextOf(task.traceContext);
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

  ended(task: { taskId: string; attempt: number }, outcome: "succeeded" | "failed" | "dead" | "released", error?: { name: string; message: string }): void {
    if (this.open.size === 0) return;
    const key = `${task.taskId}#${task.attempt}`;
    const span = this.open.get(key);
    if (!span) return;
    this.open.delete(key);
    span.setAttribute("underway.task.outcome", outcome);
    if (error) {
      span.recordException({ name: error.name, message: error.message });
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    }
    span.end();
  }
}
