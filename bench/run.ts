/**
 * The underway benchmark: `npm run bench` (full) or `npm run bench -- --quick`. See bench/README.md.
 *
 * Every round of every scenario runs in a fresh child process (bench/child.ts) on a fresh SQLite
 * file; rounds are interleaved across scenarios so that a change in the machine's load does not
 * fall on one scenario only. Prints a markdown table on stdout (progress goes to stderr) and writes
 * bench/results/latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { monotonicNow } from "./lib/clock.ts";
import { describeEnvironment } from "./lib/environment.ts";
import type { ChildSpec, RoundResult } from "./lib/protocol.ts";
import { renderMarkdown, summarize, type Report, type ScenarioDef } from "./lib/report.ts";
import { ChildFailure, runChild } from "./lib/spawn.ts";

interface Scenario extends ScenarioDef {
  readonly spec: Omit<ChildSpec, "dbPath" | "timeLimitMs" | "execArgv">;
}

const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));
const PROFILES_DIR = join(RESULTS_DIR, "profiles");

const USAGE = `usage: npm run bench -- [options]
  --quick            one round, 2,000 tasks in scenario 1 (under two minutes)
  --rounds N         rounds per scenario (default 3, quick 1)
  --only IDS         comma-separated scenario ids to run (default: all)
  --profile IDS      run these scenarios' children with --cpu-prof (into bench/results/profiles/)
  --timeout SECONDS  time limit of each child process (default 120)
  --list             list the scenario ids and exit`;

function scenarios(quick: boolean): Scenario[] {
  const n = (count: number): string => count.toLocaleString("en-US");
  const single = quick ? 2_000 : 20_000;
  const tasks = 20_000;
  const latency = { count: 500, rate: 100 };
  const drain = (concurrency: number): Scenario => ({
    id: `drain-c${concurrency}`,
    number: "3",
    title: `Drain queued tasks, 1 worker process, concurrency ${concurrency}`,
    size: `${n(tasks)} tasks`,
    spec: { scenario: "drain", count: tasks, concurrency, batch: 1_000 },
  });
  return [
    {
      id: "enqueue-single",
      number: "1",
      title: "Enqueue one at a time: awaited `Task.startNew`, `worker: false`",
      size: `${n(single)} tasks`,
      spec: { scenario: "enqueue-single", count: single },
    },
    {
      id: "enqueue-bulk",
      number: "2",
      title: "Enqueue in bulk: `Task.startNewMany`, 1,000 per call, `worker: false`",
      size: `${n(tasks)} tasks`,
      spec: { scenario: "enqueue-bulk", count: tasks, batch: 1_000 },
    },
    drain(1),
    drain(10),
    drain(50),
    {
      id: "latency-local",
      number: "4",
      title: "Pickup latency, same process: idle worker (poll 60 s), start to handler",
      size: `${latency.count} starts at ${latency.rate}/s`,
      spec: { scenario: "latency-local", ...latency },
    },
    {
      id: "latency-cross",
      number: "5",
      title: "Pickup latency across processes: starts from a second process (`worker: false`)",
      size: `${latency.count} starts at ${latency.rate}/s`,
      spec: { scenario: "latency-cross", ...latency },
    },
    {
      id: "raw-sqlite",
      number: "6",
      title: "Raw better-sqlite3, no queue (WAL, synchronous=NORMAL)",
      size: `${n(tasks)} rows`,
      spec: { scenario: "raw-sqlite", count: tasks },
    },
  ];
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function positiveInteger(text: string | undefined, what: string, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`${what} must be a positive integer, got ${JSON.stringify(text)}\n${USAGE}`);
  return value;
}

function idList(text: string | undefined, known: readonly Scenario[], what: string): Set<string> {
  const ids = new Set((text ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  for (const id of ids) {
    if (!known.some((s) => s.id === id)) fail(`${what}: unknown scenario ${JSON.stringify(id)}; known: ${known.map((s) => s.id).join(", ")}`);
  }
  return ids;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        rounds: { type: "string" },
        only: { type: "string" },
        profile: { type: "string" },
        timeout: { type: "string" },
        list: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const quick = args.quick === true;
  const all = scenarios(quick);
  if (args.list) {
    for (const s of all) console.log(`${s.id.padEnd(16)} ${s.number}. ${s.title} (${s.size})`);
    return;
  }
  const rounds = positiveInteger(args.rounds, "--rounds", quick ? 1 : 3);
  const timeLimitMs = positiveInteger(args.timeout, "--timeout", 120) * 1_000;
  const only = idList(args.only, all, "--only");
  const profiled = idList(args.profile, all, "--profile");
  const selected = only.size ? all.filter((s) => only.has(s.id)) : all;

  const environment = describeEnvironment();
  const started = monotonicNow();
  const results = new Map<string, { rounds: RoundResult[]; wallMs: number[] }>(selected.map((s) => [s.id, { rounds: [], wallMs: [] }]));
  const total = rounds * selected.length;
  let step = 0;
  if (profiled.size) mkdirSync(PROFILES_DIR, { recursive: true });
  console.error(`underway benchmark, ${quick ? "quick" : "full"} mode: ${selected.length} scenarios x ${rounds} rounds`);

  for (let round = 1; round <= rounds; round++) {
    for (const scenario of selected) {
      step++;
      const dir = mkdtempSync(join(os.tmpdir(), `underway-bench-${scenario.id}-`));
      const execArgv = profiled.has(scenario.id) ? ["--cpu-prof", `--cpu-prof-dir=${PROFILES_DIR}`] : [];
      const spec: ChildSpec = {
        ...scenario.spec,
        dbPath: join(dir, "bench.db"),
        // The child gives up by itself a little earlier, with a message saying how far it got.
        timeLimitMs: Math.max(1_000, timeLimitMs - 5_000),
        ...(execArgv.length ? { execArgv } : {}),
      };
      process.stderr.write(`[${step}/${total}] ${scenario.id}, round ${round} ... `);
      const at = monotonicNow();
      try {
        const result = await runChild(spec, { killAfterMs: timeLimitMs, execArgv });
        const entry = results.get(scenario.id);
        entry?.rounds.push(result);
        entry?.wallMs.push(monotonicNow() - at);
        process.stderr.write(`${((monotonicNow() - at) / 1000).toFixed(1)} s\n`);
      } catch (error) {
        process.stderr.write("FAILED\n");
        console.error(`\nbenchmark failed in ${scenario.id}, round ${round}: ${(error as Error).message}`);
        if (error instanceof ChildFailure && error.output) console.error(`--- child output (tail) ---\n${error.output}\n---`);
        process.exitCode = 1;
        return;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  const report: Report = {
    mode: quick ? "quick" : "full",
    rounds,
    environment,
    loadAtEnd: os.loadavg()[0] ?? 0,
    wallMs: monotonicNow() - started,
    scenarios: selected.map((s) => {
      const r = results.get(s.id) ?? { rounds: [], wallMs: [] };
      return summarize({ id: s.id, number: s.number, title: s.title, size: s.size }, r.rounds, r.wallMs);
    }),
  };
  console.log(renderMarkdown(report));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, "latest.json");
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.error(`\nresults written to ${file}${profiled.size ? `; CPU profiles in ${PROFILES_DIR}` : ""}`);
}

main().catch((error: unknown) => {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
});
