/** The delay before a retry: exponential in the attempt, capped, with jitter; always a finite number of ms. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { backoffDelay } from "../../src/tasks/registry.ts";

const none = (): number => 0;

it("doubles from the base up to the cap", () => {
  const backoff = { baseMs: 1_000, maxMs: 10_000, jitter: 0 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, backoff, none)), [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
});

it("stays finite at any attempt, a base of 0 included", () => {
  for (const attempt of [1_024, 1_025, 2_000, 1_000_000]) {
    assert.equal(backoffDelay(attempt, { baseMs: 0, maxMs: 60_000, jitter: 0 }, none), 0, `attempt ${attempt}, base 0`);
    assert.equal(backoffDelay(attempt, { baseMs: 1, maxMs: 60_000, jitter: 0.5 }, () => 1), 30_000, `attempt ${attempt}, base 1`);
  }
});
