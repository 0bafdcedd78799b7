import { Worker } from "node:worker_threads";
import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { afterIdle, IDLE_GAP_MS } from "../lib/raw.ts";
import { median, percentile } from "../lib/stats.ts";

/** The thread echoes every message back. Plain JavaScript, so no loader is involved. */
const ECHO = `
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (message) => parentPort.postMessage(message));
parentPort.postMessage("ready");
`;

/** Thread starts measured (the median is reported). */
const STARTS = 5;

function startThread(): Promise<{ thread: Worker; startMs: number }> {
  const started = monotonicNow();
  const thread = new Worker(ECHO, { eval: true });
  return new Promise((resolve, reject) => {
    thread.once("error", reject);
    thread.once("message", () => resolve({ thread, startMs: monotonicNow() - started }));
  });
}

/**
 * Scenario 7, the machine's worker threads: what a task run in a thread costs at least. (a) The
 * time from `new Worker` to the thread's first message, median of 5 starts. (b) `count` round
 * trips, one after another, of a message the size of a task's run request (an id, a name and an
 * 8-byte payload) to a thread that echoes it.
 */
export async function limitThread(spec: ChildSpec): Promise<RoundResult> {
  const startTimes: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const { thread, startMs } = await startThread();
    startTimes.push(startMs);
    await thread.terminate();
  }

  const { thread } = await startThread();
  try {
    const message = { t: "run", id: "0", name: "BenchNoop", parameters: new Uint8Array(8) };
    let answered = 0;
    const started = monotonicNow();
    await new Promise<void>((resolve, reject) => {
      thread.on("error", reject);
      thread.on("message", () => {
        if (++answered === spec.count) resolve();
        else thread.postMessage({ ...message, id: String(answered) });
      });
      thread.postMessage(message);
    });
    const elapsedMs = monotonicNow() - started;
    const startMs = median(startTimes);
    // One round trip after each idle pause (both threads asleep, as an idle worker and its task
    // thread are when a task arrives), next to the back-to-back ones above.
    const idle = await afterIdle(
      spec.idleSamples ?? 0,
      () =>
        new Promise<void>((resolve) => {
          thread.once("message", () => resolve());
          thread.postMessage(message);
        }),
    );
    return {
      measurements: [
        { key: "thread-start", label: "thread start (new Worker to its first message)", unit: "ms", value: startMs },
        { key: "round-trip", label: "round trips main ⇄ thread, one at a time", unit: "round trips/s", value: (spec.count * 1_000) / elapsedMs },
        ...(idle.length > 0
          ? [
              { key: "round-trip-warm", label: "one round trip, back to back", unit: "µs" as const, value: (elapsedMs * 1_000) / spec.count },
              { key: "round-trip-idle", label: `one round trip after ${IDLE_GAP_MS} ms idle, median`, unit: "µs" as const, value: median(idle) * 1_000 },
            ]
          : []),
      ],
      checks: [
        `${spec.count.toLocaleString("en-US")} round trips answered; ${STARTS} thread starts`,
        ...(idle.length > 0 ? [`${idle.length} round trips timed after ${IDLE_GAP_MS} ms idle`] : []),
      ],
      details: { roundTrips: spec.count, elapsedMs, microsecondsPerRoundTrip: (elapsedMs * 1_000) / spec.count, threadStartMs: startMs,
        roundTripsAfterIdle: idle.length,
        ...(idle.length > 0 ? { roundTripAfterIdleMinMs: idle[0]!, roundTripAfterIdleP90Ms: percentile(idle, 90), roundTripAfterIdleMaxMs: idle.at(-1)! } : {}),
      },
    };
  } finally {
    await thread.terminate();
  }
}
