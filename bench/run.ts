/**
 * The underway benchmark: `npm run bench` (full) or `npm run bench -- --quick`. See bench/README.md.
 *
 * Every round of every scenario runs on every store (SQLite and PostgreSQL), each in a fresh child
 * process (bench/child.ts) on a fresh SQLite file or a fresh PostgreSQL schema, removed afterwards;
 * rounds are interleaved across scenarios and stores so that a change in the machine's load does
 * not fall on one of them only. Prints a markdown table on stdout (progress goes to stderr) and
 * writes bench/results/latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { monotonicNow } from "./lib/clock.ts";
import { describeEnvironment } from "./lib/environment.ts";
import { DEFAULT_PG_URL, PostgresAdmin } from "./lib/postgres.ts";
import { STORES, type ChildSpec, type RoundResult, type Store } from "./lib/protocol.ts";
import { renderMarkdown, summarize, type Report, type ScenarioDef } from "./lib/report.ts";
import { ChildFailure, runChild } from "./lib/spawn.ts";

interface Scenario extends ScenarioDef {
  readonly spec: Omit<ChildSpec, "store" | "db" | "timeLimitMs" | "execArgv">;
  /** The stores it runs on (the raw baselines are one store's each). */
  readonly stores: readonly Store[];
}

const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));
const PROFILES_DIR = join(RESULTS_DIR, "profiles");

const USAGE = `usage: npm run bench -- [options]
  --quick            one round, smaller sizes (about a minute; under two on a busy machine)
  --rounds N         rounds per scenario (default 3, quick 1)
  --stores LIST      comma-separated stores: sqlite, postgres (default: both)
  --pg URL           the PostgreSQL server (default ${DEFAULT_PG_URL})
  --only IDS         comma-separated scenario ids to run (default: all)
  --profile IDS      run these scenarios' children with --cpu-prof (into bench/results/profiles/)
  --timeout SECONDS  time limit of each child process (default 300)
  --list             list the scenario ids and exit`;

/** What one round handles. Both stores run the same sizes, so their figures compare. */
interface Sizes {
  /** Scenario 1. */
  readonly single: number;
  /** Scenario 2. */
  readonly bulk: number;
  /** Scenario 3. */
  readonly drain: number;
  /** Scenarios 4 and 5: starts, at 100 per second. */
  readonly latency: number;
  /** Scenario 6. */
  readonly raw: number;
}

/**
 * The full run's sizes keep every PostgreSQL round under a minute on an idle 2-core machine (its
 * drain at concurrency 1 and its one-commit-per-row loops are the slowest).
 */
const FULL: Sizes = { single: 10_000, bulk: 20_000, drain: 10_000, latency: 500, raw: 10_000 };
/**
 * Smoke-test sizes: the quick run on both stores takes about a minute on an idle 2-core machine,
 * under two at load 8 (where starting each child process alone takes seconds).
 */
const QUICK: Sizes = { single: 1_000, bulk: 20_000, drain: 2_000, latency: 200, raw: 2_000 };

function scenarios(sizes: Sizes): Scenario[] {
  const n = (count: number): string => count.toLocaleString("en-US");
  const latency = { count: sizes.latency, rate: 100 };
  const both = STORES;
  const drain = (concurrency: number): Scenario => ({
    id: `drain-c${concurrency}`,
    number: "3",
    title: `Drain queued tasks, 1 worker process, concurrency ${concurrency}`,
    size: `${n(sizes.drain)} tasks`,
    spec: { scenario: "drain", count: sizes.drain, concurrency, batch: 1_000 },
    stores: both,
  });
  return [
    {
      id: "enqueue-single",
      number: "1",
      title: "Enqueue one at a time: awaited `Task.startNew`, `worker: false`",
      size: `${n(sizes.single)} tasks`,
      spec: { scenario: "enqueue-single", count: sizes.single },
      stores: both,
    },
    {
      id: "enqueue-bulk",
      number: "2",
      title: "Enqueue in bulk: `Task.startNewMany`, 1,000 per call, `worker: false`",
      size: `${n(sizes.bulk)} tasks`,
      spec: { scenario: "enqueue-bulk", count: sizes.bulk, batch: 1_000 },
      stores: both,
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
      stores: both,
    },
    {
      id: "latency-cross",
      number: "5",
      title: "Pickup latency across processes: starts from a second process (`worker: false`)",
      size: `${latency.count} starts at ${latency.rate}/s`,
      spec: { scenario: "latency-cross", ...latency },
      stores: both,
    },
    {
      id: "raw-sqlite",
      number: "6",
      title: "Raw better-sqlite3, no queue (WAL, synchronous=NORMAL)",
      size: `${n(sizes.raw)} rows`,
      spec: { scenario: "raw-sqlite", count: sizes.raw },
      stores: ["sqlite"],
    },
    {
      id: "raw-postgres",
      number: "6",
      title: "Raw node-postgres, no queue (one connection, prepared statements)",
      size: `${n(sizes.raw)} rows`,
      spec: { scenario: "raw-postgres", count: sizes.raw },
      stores: ["postgres"],
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

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function storeList(text: string | undefined): Store[] {
  if (text === undefined) return [...STORES];
  const names = new Set(text.split(",").map((s) => s.trim()).filter(Boolean));
  for (const name of names) {
    if (!(STORES as readonly string[]).includes(name)) fail(`--stores: unknown store ${JSON.stringify(name)}; known: ${STORES.join(", ")}`);
  }
  if (names.size === 0) fail(`--stores names no store\n${USAGE}`);
  return STORES.filter((s) => names.has(s));
}

/** One (scenario, store) pair: a row group of the table. */
interface Run {
  readonly scenario: Scenario;
  readonly store: Store;
  readonly rounds: RoundResult[];
  readonly wallMs: number[];
}

/** Where a round's data lives, and how to remove it. */
interface RoundStore {
  readonly db: string;
  readonly what: string;
  remove(): Promise<void>;
}

function sqliteRound(scenario: Scenario): RoundStore {
  const dir = mkdtempSync(join(os.tmpdir(), `underway-bench-${scenario.id}-`));
  return {
    db: join(dir, "bench.db"),
    what: dir,
    remove: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
}

function postgresRound(admin: PostgresAdmin): RoundStore {
  const { schema, url } = admin.newRound();
  return { db: url, what: `schema ${schema}`, remove: () => admin.dropSchema(schema) };
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        rounds: { type: "string" },
        stores: { type: "string" },
        pg: { type: "string" },
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
  const all = scenarios(quick ? QUICK : FULL);
  if (args.list) {
    for (const s of all) console.log(`${s.id.padEnd(16)} ${s.number}. ${s.title} (${s.size}; ${s.stores.join(", ")})`);
    return;
  }
  const rounds = positiveInteger(args.rounds, "--rounds", quick ? 1 : 3);
  const timeLimitMs = positiveInteger(args.timeout, "--timeout", 300) * 1_000;
  const stores = storeList(args.stores);
  const only = idList(args.only, all, "--only");
  const profiled = idList(args.profile, all, "--profile");
  const runs: Run[] = (only.size ? all.filter((s) => only.has(s.id)) : all).flatMap((scenario) =>
    stores.filter((store) => scenario.stores.includes(store)).map((store) => ({ scenario, store, rounds: [], wallMs: [] })),
  );
  if (runs.length === 0) fail(`nothing to run: no selected scenario runs on ${stores.join(", ")}`);

  const environment = describeEnvironment();
  let admin: PostgresAdmin | null = null;
  if (runs.some((r) => r.store === "postgres")) {
    const url = args.pg ?? process.env.UNDERWAY_BENCH_PG ?? DEFAULT_PG_URL;
    try {
      admin = await PostgresAdmin.open(url);
    } catch (error) {
      fail(`\n${(error as Error).message}`);
    }
    const leftovers = await admin.dropLeftovers();
    if (leftovers.length) console.error(`dropped ${leftovers.length} schema(s) left by earlier, killed benchmark runs: ${leftovers.join(", ")}`);
  }

  // Ctrl-C (or SIGTERM) ends the child under way; its round's file or schema is still removed.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) process.exit(130); // a second one: leave now
    console.error(`\n${signal}: stopping after cleaning up the current round (again to leave at once)`);
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = monotonicNow();
  const total = rounds * runs.length;
  let step = 0;
  if (profiled.size) mkdirSync(PROFILES_DIR, { recursive: true });
  console.error(
    `underway benchmark, ${quick ? "quick" : "full"} mode: ${plural(new Set(runs.map((r) => r.scenario.id)).size, "scenario")} on ${stores.join(" and ")}, ${plural(runs.length, "run")} x ${plural(rounds, "round")}`,
  );

  for (let round = 1; round <= rounds; round++) {
    for (const run of runs) {
      const { scenario, store } = run;
      step++;
      const where = store === "postgres" && admin ? postgresRound(admin) : sqliteRound(scenario);
      const profileDir = join(PROFILES_DIR, `${scenario.id}.${store}.r${round}`);
      const profile = profiled.has(scenario.id);
      const execArgv = profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
      const spec: ChildSpec = {
        ...scenario.spec,
        store,
        db: where.db,
        // The child gives up by itself a little earlier, with a message saying how far it got.
        timeLimitMs: Math.max(1_000, timeLimitMs - 5_000),
        ...(execArgv.length ? { execArgv } : {}),
        // On PostgreSQL the time is spent waiting for the server: count the statements too.
        ...(profile && store === "postgres" ? { statementsFile: join(profileDir, "statements.json") } : {}),
      };
      if (profile) mkdirSync(profileDir, { recursive: true });
      process.stderr.write(`[${step}/${total}] ${scenario.id} on ${store}, round ${round} ... `);
      const at = monotonicNow();
      let failed = false;
      try {
        const result = await runChild(spec, { killAfterMs: timeLimitMs, execArgv, signal: interrupt.signal });
        run.rounds.push(result);
        run.wallMs.push(monotonicNow() - at);
        process.stderr.write(`${((monotonicNow() - at) / 1000).toFixed(1)} s\n`);
      } catch (error) {
        failed = true;
        process.stderr.write("FAILED\n");
        if (!interrupt.signal.aborted) {
          console.error(`\nbenchmark failed in ${scenario.id} on ${store}, round ${round}: ${(error as Error).message}`);
          if (error instanceof ChildFailure && error.output) console.error(`--- child output (tail) ---\n${error.output}\n---`);
        }
      } finally {
        await where.remove().catch((error: unknown) => {
          console.error(`could not remove the round's ${where.what}: ${(error as Error).message}`);
        });
      }
      if (failed || interrupt.signal.aborted) {
        process.exitCode = interrupt.signal.aborted ? 130 : 1;
        return;
      }
    }
  }

  const report: Report = {
    mode: quick ? "quick" : "full",
    rounds,
    environment,
    stores,
    postgres: admin?.info ?? null,
    loadAtEnd: os.loadavg()[0] ?? 0,
    wallMs: monotonicNow() - started,
    scenarios: runs.map((r) =>
      summarize({ id: r.scenario.id, number: r.scenario.number, title: r.scenario.title, size: r.scenario.size }, r.store, r.rounds, r.wallMs),
    ),
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
