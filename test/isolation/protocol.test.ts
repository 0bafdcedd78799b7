/**
 * How attempts travel to a task thread: packed (their fields as arrays, all their parameters in
 * one buffer) and unpacked in the thread into the attempts that were packed, through the same
 * structured clone that carries the message.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { packRuns, unpackRuns, type ThreadRun } from "../../src/worker/isolation/protocol.ts";

function run(id: string, parameters: Uint8Array, extra: Partial<ThreadRun> = {}): ThreadRun {
  return { id, name: "Packed", module: "file:///tasks.ts", parameters, attempt: 1, maxAttempts: 3, initiator: null, withUserConnection: false, ...extra };
}

it("carries each attempt's fields and parameters through a structured clone, in order", () => {
  // Views into larger buffers at non-zero offsets (as a driver's rows may be), and an empty one.
  const shared = new Uint8Array([9, 9, 1, 2, 3, 9, 4, 5, 9]);
  const runs = [
    { runId: 7, run: run("1", shared.subarray(2, 5)) },
    { runId: 8, run: run("2", new Uint8Array(0), { module: null, attempt: 2, initiator: { userId: "u1", culture: "en-US", timeZone: "UTC", tenant: null } as never, withUserConnection: true }) },
    { runId: 9, run: run("3", shared.subarray(6, 8), { name: "Other", maxAttempts: 1 }) },
  ];
  const packed = structuredClone(packRuns(runs));
  assert.equal(packed.bytes.byteLength, 5, "only the parameters' own bytes travel");
  const got: { runId: number; run: ThreadRun }[] = [];
  unpackRuns(packed, (runId, r) => got.push({ runId, run: r }));
  assert.deepEqual(
    got.map(({ runId, run: r }) => ({ runId, ...r, parameters: [...r.parameters] })),
    runs.map(({ runId, run: r }) => ({ runId, ...r, parameters: [...r.parameters] })),
  );
});

it("packs no attempts into an empty message", () => {
  const packed = packRuns([]);
  assert.equal(packed.bytes.byteLength, 0);
  let calls = 0;
  unpackRuns(packed, () => calls++);
  assert.equal(calls, 0);
});
