/**
 * Prints where a V8 CPU profile (.cpuprofile, from `node --cpu-prof`) spends its time: the
 * functions with the most self time, and those with the most total (inclusive) time.
 *
 *   node --import tsx bench/profile-summary.ts [--top N] <file.cpuprofile>...
 *
 * An anonymous function is shown with its caller ("taskClaim > (anonymous)"). Time spent in a
 * native call (a better-sqlite3 statement running SQL) counts as self time of the JavaScript
 * function that made the call. Under `--import tsx` each process writes two profiles: the main
 * thread's, and the module loader thread's (almost all idle).
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ""))}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
}

function summarizeFile(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<string, number>();
  const totalUs = new Map<string, number>();
  let sampledUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    sampledUs += dt;
    const node = byId.get(id);
    if (!node) return;
    const up = parent.get(id);
    const caller = up === undefined ? undefined : byId.get(up);
    const self =
      node.callFrame.functionName === "" && caller ? `${caller.callFrame.functionName || "(anonymous)"} > ${frameName(node)}` : frameName(node);
    selfUs.set(self, (selfUs.get(self) ?? 0) + dt);
    // Inclusive time: once per distinct frame name on the sample's stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (!frame) break;
      const name = frameName(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      totalUs.set(name, (totalUs.get(name) ?? 0) + dt);
    }
  });

  const pct = (us: number): string => `${((100 * us) / sampledUs).toFixed(1).padStart(5)}%`;
  const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const print = (title: string, table: Map<string, number>): void => {
    console.log(`\n${title}`);
    for (const [name, us] of [...table].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${ms(us)} ${pct(us)}  ${name}`);
    }
  };
  console.log(`${file}: ${(sampledUs / 1000).toFixed(0)} ms sampled`);
  print("self time", selfUs);
  print("total time (inclusive)", totalUs);
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "25" } }, allowPositionals: true });
  const top = Number(values.top);
  if (positionals.length === 0 || !Number.isInteger(top) || top < 1) {
    throw new Error("usage: bench/profile-summary.ts [--top N] <file.cpuprofile>...");
  }
  for (const file of positionals) summarizeFile(file, top);
}

main();
