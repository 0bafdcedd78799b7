// Its own file, so the first compile here is the first of the process (node:test runs each file
// in a process of its own): it parses the platform's files, @types/node and the lib files; the
// second reuses them from the compiler's module-level cache.
import assert from "node:assert/strict";
import { it } from "node:test";
import { compilePackage } from "../../../src/platform/packages/compiler/index.ts";
import { workedExample } from "./helpers.ts";

it("compiling the worked example: the first compile, then the cached ones", async (t) => {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await compilePackage(await workedExample());
    times.push(Math.round(performance.now() - started));
  }
  const [first = 0, second = 0, third = 0] = times;
  const line = `compile of the worked example: first ${first} ms, second ${second} ms, third ${third} ms`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(second < first / 2, line);
});
