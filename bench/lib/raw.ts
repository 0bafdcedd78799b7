/** What the machine-limit scenarios (bench/scenarios/limit-*.ts) share. */
import { unpack } from "msgpackr";
import { monotonicNow, sleep } from "./clock.ts";

/** Rows claimed per UPDATE ... RETURNING. */
export const CLAIM_BATCH = 500;

/** A payload the size of a small encoded parameter object: { n: 12345 } in MessagePack. */
export const PAYLOAD = Buffer.from([0x81, 0xa1, 0x6e, 0xcd, 0x30, 0x39]);

/** Decodes a claimed row's payload as a worker would before running it; throws on a bad one. */
export function decodePayload(bytes: Uint8Array | undefined): void {
  if (!bytes) throw new Error("a claimed row has no payload");
  const value: unknown = unpack(bytes);
  if (typeof value !== "object" || value === null) throw new Error(`a claimed row's payload decodes to ${JSON.stringify(value)}`);
}

/** How long the process sits idle before each after-idle sample, ms: the 100 enqueues per second of scenario 4. */
export const IDLE_GAP_MS = 10;

/**
 * The time of one operation started after the process sat idle for IDLE_GAP_MS (sleeping in its
 * event loop, as a waiting worker does), `samples` times; sorted, ms. Scenario 4 picks up each
 * task after such a pause, and on a shared machine the first native calls after one run with
 * cold caches: these samples say what that costs on this machine, next to the same operation
 * run back to back.
 */
export async function afterIdle(samples: number, operation: () => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    await sleep(IDLE_GAP_MS);
    const started = monotonicNow();
    await operation();
    times.push(monotonicNow() - started);
  }
  return times.sort((a, b) => a - b);
}
