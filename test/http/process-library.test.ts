import assert from "node:assert/strict";
import { join } from "node:path";
import { it } from "node:test";
import { ProcessLibrary } from "../../src/http/process-library.ts";
import { startPlatform } from "../platform/helpers.ts";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "background-activity");

it("makes a published diagram's code-free copy once per build, not once per view", async () => {
  const platform = await startPlatform("sqlite", { packages: [EXAMPLE], isolation: "none", worker: false });
  const library = new ProcessLibrary(platform);
  const [process] = await library.list();
  assert.ok(process, "the example package publishes a process");
  const first = library.withoutCode(process);
  assert.equal(library.withoutCode(process), first, "a second view made the copy again");
  const xml = await first;
  assert.doesNotMatch(xml, /Task\.startNewWithUserConnection/, "the script's body is left out");
  assert.match(xml, /ScriptTask_CreateBackgroundTask/, "the diagram's elements stay");
  // The same build listed again: the copy is kept.
  const [again] = await library.list();
  assert.equal(again, process);
  assert.equal(library.withoutCode(again!), first);
});
