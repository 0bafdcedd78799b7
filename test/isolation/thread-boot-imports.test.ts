/**
 * What a task thread loads as it boots is paid again by every thread. Neither the OpenTelemetry
 * API (about 15 ms a thread) nor croner (a few) is among it: until something is registered with
 * the API it could only hand out no-ops (observability/tracing.ts loads it then), and a thread
 * seldom reads a cron expression (maintenance/cron.ts loads croner with the first). Read off the
 * build the threads boot from: every module its entry imports statically, and theirs in turn.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { threadBundle } from "../../src/runtime/isolation/thread-bundle.ts";

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };

/** The packages and built modules a module of the build imports statically (not `import()`). */
function staticImports(url: URL): { packages: string[]; modules: URL[] } {
  const code = readFileSync(url, "utf8");
  const packages: string[] = [];
  const modules: URL[] = [];
  for (const [, specifier] of code.matchAll(/^\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s)?["']([^"']+)["']/gm)) {
    if (specifier!.startsWith(".")) modules.push(new URL(specifier!, url));
    else packages.push(specifier!);
  }
  return { packages, modules };
}

it("boots a task thread without importing the OpenTelemetry API or croner", async () => {
  const bundle = await threadBundle(silent);
  assert.ok(bundle, "a build was made");
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [bundle.entry];
  while (queue.length > 0) {
    const url = queue.pop()!;
    if (seen.has(url.href)) continue;
    seen.add(url.href);
    const found = staticImports(url);
    for (const p of found.packages) packages.add(p);
    queue.push(...found.modules);
  }
  assert.ok(seen.size > 1 && packages.has("msgpackr"), `the walk found the thread's modules and packages: ${[...packages].join(", ")}`);
  for (const lazy of ["@opentelemetry/api", "croner"]) assert.ok(!packages.has(lazy), `${lazy} is among the thread's boot imports: ${[...packages].join(", ")}`);
});
