import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RunAbort } from "../../src/worker/run-abort.ts";

describe("an attempt's abort", () => {
  it("tells its listeners once, with the first reason, and not those that left", () => {
    const abort = new RunAbort();
    const heard: string[] = [];
    const stays = { handleEvent: () => heard.push(`stays: ${String(abort.reason)}`) };
    const leaves = { handleEvent: () => heard.push("leaves") };
    abort.listen(stays);
    abort.listen(leaves);
    abort.unlisten(leaves);
    assert.equal(abort.aborted, false);
    assert.equal(abort.reason, undefined);
    abort.abort("first");
    abort.abort("second");
    assert.equal(abort.aborted, true);
    assert.equal(abort.reason, "first");
    assert.deepEqual(heard, ["stays: first"]);
  });

  it("makes its signal when asked, aborted already if the attempt was, and aborts it later otherwise", () => {
    const early = new RunAbort();
    early.abort(new Error("canceled"));
    assert.equal(early.signal.aborted, true);
    assert.equal((early.signal.reason as Error).message, "canceled");

    const late = new RunAbort();
    const { signal } = late;
    assert.equal(signal.aborted, false);
    let fired = 0;
    signal.addEventListener("abort", () => fired++);
    late.abort(new Error("timed out"));
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as Error).message, "timed out");
    assert.equal(fired, 1);
    assert.equal(late.signal, signal);
  });
});
