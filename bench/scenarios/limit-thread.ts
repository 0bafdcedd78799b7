import { Worker } from "node:worker_threads";
import { monotonicNow } from "../lib/clock.ts";
import type { ChildSpec, RoundResult } from "../lib/protocol.ts";
import { median } from "../lib/stats.ts";

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
    return {
      measurements: [
        { key: "thread-start", label: "thread start (new Worker to its first message)", unit: "ms", value: startMs },
        { key: "round-trip", label: "round trips main ⇄ thread, one at a time", unit: "round trips/s", value: (spec.count * 1_000) / elapsedMs },
      ],
      checks: [`${spec.count.toLocaleString("en-US")} round trips answered; ${STARTS} thread starts`],
      details: { roundTrips: spec.count, elapsedMs, microsecondsPerRoundTrip: (elapsedMs * 1_000) / spec.count, threadStartMs: startMs },
    };
  } finally {
    await thread.terminate();
  }
}
