/**
 * The underway benchmark: `npm run bench` (full) or `npm run bench -- --quick`. See bench/README.md.
 *
 * Compares underway (SQLite and PostgreSQL) with graphile-worker, pg-boss and BullMQ, and measures
 * the machine's own limits without a queue library. Every round of every scenario runs on every
 * system in fresh child processes (bench/child.ts) on a fresh SQLite file, PostgreSQL schema or
 * Redis key prefix, removed afterwards; within a round the systems are interleaved, scenario by
 * scenario, so that a change in the machine's load does not fall on one of them only. Prints a
 * markdown report on stdout (progress goes to stderr) and writes bench/results/latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { monotonicNow } from "./lib/clock.ts";
import { describeEnvironment } from "./lib/environment.ts";
import { DEFAULT_PG_URL, PostgresAdmin } from "./lib/postgres.ts";
import type { ChildSpec, RoundResult, Target } from "./lib/protocol.ts";
import { DEFAULT_REDIS_URL, RedisAdmin } from "./lib/redis.ts";
import { formatDuration, renderMarkdown, summarizeCell, type Report, type ScenarioDef } from "./lib/report.ts";
import { ChildFailure, runChild } from "./lib/spawn.ts";
import { parseSystems, QUEUE_SYSTEMS, SYSTEMS, type Service, type SystemId } from "./lib/systems.ts";

interface Scenario extends ScenarioDef {
  readonly spec: Omit<ChildSpec, "system" | "target" | "timeLimitMs" | "execArgv" | "statementsFile">;
  /** Rounds at most (memory: one; it is a footprint, and the longest scenario). */
  readonly maxRounds?: number;
}

const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));
const PROFILES_DIR = join(RESULTS_DIR, "profiles");

const USAGE = `usage: npm run bench -- [options]
  --quick            one round, smaller sizes and time limits (under two minutes)
  --rounds N         rounds per scenario (default 3, quick 1)
  --systems LIST     comma-separated systems (default: all): ${[...QUEUE_SYSTEMS, "machine"].join(", ")},
                     or the groups underway, peers, postgres
  --only IDS         comma-separated scenario ids to run (default: all; --list shows them)
  --pg URL           the PostgreSQL server (default ${DEFAULT_PG_URL}, or $UNDERWAY_BENCH_PG)
  --redis URL        the Redis server (default ${DEFAULT_REDIS_URL}, or $UNDERWAY_BENCH_REDIS)
  --profile IDS      run these scenarios' children with --cpu-prof (into bench/results/profiles/)
  --timeout SECONDS  time limit of each child process (default 300)
  --list             list the scenario ids and exit`;

/** What one round handles, and the time limits of the measurements that may not finish. */
interface Sizes {
  readonly single: number;
  readonly singleBudgetMs: number;
  readonly bulk: number;
  readonly bulkBudgetMs: number;
  readonly drain: number;
  readonly drainBudgetMs: number;
  /** Enqueues at 100 per second. */
  readonly latency: number;
  readonly memory: number;
  readonly memoryBudgetMs: number;
  /** How long the memory scenario's worker sits idle before its first reading. */
  readonly memoryIdleMs: number;
  readonly isolation: number;
  readonly isolationBudgetMs: number;
  readonly limit: number;
  /** Time limit of each one-commit-per-row INSERT loop of the limits (PostgreSQL's is slow on a busy machine). */
  readonly limitBudgetMs: number;
  readonly roundTrips: number;
  /** Limits: single operations timed after an idle pause, each (the pauses add 10 ms apiece). */
  readonly idleSamples: number;
}

/**
 * The issue's sizes. The time limits keep the full matrix under 30 minutes on a 2-core machine:
 * where a system cannot handle the size within its limit (one commit per enqueue on PostgreSQL;
 * pg-boss's one batch per poll), the round reports the rate of what it handled and says so.
 */
const FULL: Sizes = {
  single: 20_000,
  singleBudgetMs: 8_000,
  bulk: 20_000,
  bulkBudgetMs: 20_000,
  drain: 20_000,
  drainBudgetMs: 12_000,
  latency: 500,
  memory: 200_000,
  memoryBudgetMs: 45_000,
  memoryIdleMs: 2_000,
  isolation: 20_000,
  isolationBudgetMs: 10_000,
  limit: 20_000,
  limitBudgetMs: 10_000,
  roundTrips: 100_000,
  idleSamples: 200,
};

/** Smoke-test sizes: the whole matrix in under two minutes. */
const QUICK: Sizes = {
  single: 1_000,
  singleBudgetMs: 1_000,
  bulk: 5_000,
  bulkBudgetMs: 5_000,
  drain: 2_000,
  drainBudgetMs: 1_500,
  latency: 50,
  memory: 4_000,
  memoryBudgetMs: 2_000,
  memoryIdleMs: 500,
  isolation: 2_000,
  isolationBudgetMs: 1_500,
  limit: 1_000,
  limitBudgetMs: 1_500,
  roundTrips: 10_000,
  idleSamples: 20,
};

const UNDERWAY: readonly SystemId[] = ["underway-sqlite", "underway-postgres"];
/** The memory scenario's peers: those that get through its size in reasonable time (pg-boss, and graphile-worker without batching, do not). */
const MEMORY_SYSTEMS: readonly SystemId[] = ["underway-sqlite", "underway-postgres", "graphile-worker-batched", "bullmq"];

function scenarios(sizes: Sizes): Scenario[] {
  const n = (count: number): string => count.toLocaleString("en-US");
  const s = (ms: number): string => `${ms / 1000} s`;
  const drain = (concurrency: number): Scenario => ({
    id: `drain-c${concurrency}`,
    number: "3",
    title: `Drain queued no-op tasks: 1 worker process, concurrency ${concurrency}`,
    size: `${n(sizes.drain)} tasks, ≤ ${s(sizes.drainBudgetMs)}`,
    spec: { scenario: "drain", count: sizes.drain, concurrency, batch: 1_000, budgetMs: sizes.drainBudgetMs },
    systems: QUEUE_SYSTEMS,
    group: "compare",
  });
  const isolation = (id: string, title: string, mode: "thread" | "none", runaways: number): Scenario => ({
    id,
    number: "6",
    title,
    size: `${n(sizes.isolation)} tasks, ≤ ${s(sizes.isolationBudgetMs)}`,
    spec: { scenario: "isolation", count: sizes.isolation, concurrency: 10, batch: 1_000, budgetMs: sizes.isolationBudgetMs, isolation: mode, runaways },
    systems: UNDERWAY,
    group: "compare",
  });
  return [
    {
      id: "enqueue-single",
      number: "1",
      title: "Enqueue one at a time (each call awaited)",
      size: `${n(sizes.single)} tasks, ≤ ${s(sizes.singleBudgetMs)}`,
      spec: { scenario: "enqueue-single", count: sizes.single, budgetMs: sizes.singleBudgetMs },
      systems: QUEUE_SYSTEMS,
      group: "compare",
    },
    {
      id: "enqueue-bulk",
      number: "2",
      title: "Enqueue in bulk, 1,000 per call",
      size: `${n(sizes.bulk)} tasks, ≤ ${s(sizes.bulkBudgetMs)}`,
      spec: { scenario: "enqueue-bulk", count: sizes.bulk, batch: 1_000, budgetMs: sizes.bulkBudgetMs },
      systems: QUEUE_SYSTEMS,
      group: "compare",
    },
    drain(1),
    drain(10),
    drain(50),
    {
      id: "latency",
      number: "4",
      title: "Pickup latency: enqueued by another process while the worker waits (concurrency 10)",
      size: `${sizes.latency} at 100/s`,
      spec: { scenario: "latency", count: sizes.latency, rate: 100 },
      systems: QUEUE_SYSTEMS,
      group: "compare",
    },
    {
      id: "latency-local",
      number: "4b",
      title: "Pickup latency, enqueued by the worker's own runtime",
      size: `${sizes.latency} at 100/s`,
      spec: { scenario: "latency-local", count: sizes.latency, rate: 100 },
      systems: UNDERWAY,
      group: "compare",
    },
    {
      id: "latency-local-off",
      number: "4c",
      title: "Pickup latency as 4b, `isolation: { mode: \"none\" }` (4b runs with the default, thread isolation)",
      size: `${sizes.latency} at 100/s`,
      spec: { scenario: "latency-local", count: sizes.latency, rate: 100, isolation: "none" },
      systems: UNDERWAY,
      group: "compare",
    },
    {
      id: "latency-local-runaways",
      number: "4d",
      title: "Pickup latency as 4b, with 2 runaway tasks (`while (true) {}`) holding 2 slots",
      size: `${sizes.latency} at 100/s`,
      spec: { scenario: "latency-local", count: sizes.latency, rate: 100, isolation: "thread", runaways: 2 },
      systems: UNDERWAY,
      group: "compare",
    },
    {
      id: "memory",
      number: "5",
      title: "Worker memory (RSS): idle, then after running the tasks (concurrency 50)",
      size: `${n(sizes.memory)} tasks, ≤ ${s(sizes.memoryBudgetMs)}`,
      spec: { scenario: "memory", count: sizes.memory, concurrency: 50, batch: 1_000, budgetMs: sizes.memoryBudgetMs, idleMs: sizes.memoryIdleMs },
      systems: MEMORY_SYSTEMS,
      group: "compare",
      maxRounds: 1,
    },
    isolation("isolation-off", "Drain, concurrency 10, `isolation: { mode: \"none\" }`", "none", 0),
    isolation("isolation-on", "Drain, concurrency 10, `isolation: { mode: \"thread\" }`", "thread", 0),
    isolation("isolation-runaways", "Drain, concurrency 10, thread isolation, 2 runaway tasks (`while (true) {}`) holding 2 slots", "thread", 2),
    {
      id: "limit-sqlite",
      number: "7",
      title: "SQLite (better-sqlite3, WAL, synchronous=NORMAL)",
      size: `${n(sizes.limit)} rows, INSERTs ≤ ${s(sizes.limitBudgetMs)}`,
      spec: { scenario: "limit-sqlite", count: sizes.limit, budgetMs: sizes.limitBudgetMs, idleSamples: sizes.idleSamples },
      systems: ["machine"],
      group: "limits",
    },
    {
      id: "limit-postgres",
      number: "7",
      title: "PostgreSQL (node-postgres, one connection, prepared statements, SKIP LOCKED)",
      size: `${n(sizes.limit)} rows, INSERTs ≤ ${s(sizes.limitBudgetMs)}`,
      spec: { scenario: "limit-postgres", count: sizes.limit, budgetMs: sizes.limitBudgetMs },
      systems: ["machine"],
      group: "limits",
    },
    {
      id: "limit-thread",
      number: "7",
      title: "Worker threads (node:worker_threads)",
      size: `${n(sizes.roundTrips)} round trips`,
      spec: { scenario: "limit-thread", count: sizes.roundTrips, idleSamples: sizes.idleSamples },
      systems: ["machine"],
      group: "limits",
    },
  ];
}

/** The service a (scenario, system) round needs a fresh place in. */
function serviceOf(scenario: Scenario, system: SystemId): Service {
  if (system !== "machine") return SYSTEMS[system].service;
  return scenario.id === "limit-sqlite" ? "sqlite" : scenario.id === "limit-postgres" ? "postgres" : "none";
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

/** One (scenario, system) pair and its rounds so far. */
interface Run {
  readonly scenario: Scenario;
  readonly system: SystemId;
  readonly rounds: RoundResult[];
  readonly failures: string[];
  readonly wallMs: number[];
}

/** Where a round's data lives, and how to remove it. */
interface RoundPlace {
  readonly target: Target;
  readonly what: string;
  remove(): Promise<void>;
}

/** The first figure of a round, for the progress line. */
function headline(result: RoundResult): string {
  if (result.unavailable) return `n/a: ${result.unavailable}`;
  const m = result.measurements[0];
  if (!m) return "";
  const value = m.unit === "ms" ? m.value.toFixed(2) : Math.round(m.value).toLocaleString("en-US");
  return `${m.label} ${value} ${m.unit}${m.partial ? ` (stopped at the time limit: ${m.partial})` : ""}${result.warnings?.length ? " WARNING" : ""}`;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        rounds: { type: "string" },
        systems: { type: "string" },
        pg: { type: "string" },
        redis: { type: "string" },
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
    for (const s of all) console.log(`${s.id.padEnd(20)} ${s.number}. ${s.title} (${s.size}; ${s.systems.join(", ")})`);
    return;
  }
  const rounds = positiveInteger(args.rounds, "--rounds", quick ? 1 : 3);
  const timeLimitMs = positiveInteger(args.timeout, "--timeout", 300) * 1_000;
  const systems = parseSystems(args.systems);
  if (typeof systems === "string") fail(`--systems: ${systems}\n${USAGE}`);
  const only = idList(args.only, all, "--only");
  const profiled = idList(args.profile, all, "--profile");
  // A limit runs when a selected system uses its store (the thread limit: always), and "machine" is selected.
  const services = new Set(systems.filter((s) => s !== "machine").map((s) => SYSTEMS[s].service));
  const runs: Run[] = (only.size ? all.filter((s) => only.has(s.id)) : all).flatMap((scenario) =>
    scenario.systems
      .filter((system) => systems.includes(system))
      .filter((system) => {
        const service = serviceOf(scenario, system);
        return system !== "machine" || service === "none" || services.has(service) || only.has(scenario.id);
      })
      .map((system) => ({ scenario, system, rounds: [], failures: [], wallMs: [] })),
  );
  if (runs.length === 0) fail(`nothing to run: no selected scenario runs on ${systems.join(", ")}`);

  const environment = describeEnvironment();
  const needs = new Set(runs.map((r) => serviceOf(r.scenario, r.system)));
  let admin: PostgresAdmin | null = null;
  let redis: RedisAdmin | null = null;
  try {
    if (needs.has("postgres")) {
      admin = await PostgresAdmin.open(args.pg ?? process.env.UNDERWAY_BENCH_PG ?? DEFAULT_PG_URL);
      const leftovers = await admin.dropLeftovers();
      if (leftovers.length) console.error(`dropped ${leftovers.length} schema(s) left by earlier, killed benchmark runs: ${leftovers.join(", ")}`);
    }
    if (needs.has("redis")) {
      redis = await RedisAdmin.open(args.redis ?? process.env.UNDERWAY_BENCH_REDIS ?? DEFAULT_REDIS_URL);
      const leftovers = await redis.dropLeftovers();
      if (leftovers.length) console.error(`deleted the Redis keys of ${leftovers.length} round(s) left by earlier, killed benchmark runs`);
    }
  } catch (error) {
    fail(`\n${(error as Error).message}`);
  }

  const placeFor = (scenario: Scenario, system: SystemId): RoundPlace => {
    const service = serviceOf(scenario, system);
    if (service === "sqlite") {
      const dir = mkdtempSync(join(os.tmpdir(), `underway-bench-${scenario.id}-`));
      return { target: { sqliteFile: join(dir, "bench.db") }, what: dir, remove: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })) };
    }
    if (service === "postgres" && admin) {
      const pg = admin;
      const { schema } = pg.newRound();
      return { target: { pgUrl: pg.url, pgSchema: schema }, what: `schema ${schema}`, remove: () => pg.dropSchema(schema) };
    }
    if (service === "redis" && redis) {
      const r = redis;
      const prefix = r.newPrefix();
      return { target: { redisUrl: r.url, redisPrefix: prefix }, what: `Redis keys ${prefix}:*`, remove: async () => void (await r.dropPrefix(prefix)) };
    }
    return { target: {}, what: "nothing", remove: () => Promise.resolve() };
  };

  // Ctrl-C (or SIGTERM) ends the child under way; its round's file, schema or keys are still removed.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) process.exit(130); // a second one: leave now
    console.error(`\n${signal}: stopping after cleaning up the current round (again to leave at once)`);
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = monotonicNow();
  const total = runs.reduce((sum, r) => sum + Math.min(rounds, r.scenario.maxRounds ?? rounds), 0);
  let step = 0;
  if (profiled.size) mkdirSync(PROFILES_DIR, { recursive: true });
  console.error(
    `underway benchmark, ${quick ? "quick" : "full"} mode: ${plural(new Set(runs.map((r) => r.scenario.id)).size, "scenario")} on ${plural(new Set(runs.map((r) => r.system)).size, "system")}, ${plural(total, "child run")}`,
  );

  outer: for (let round = 1; round <= rounds; round++) {
    for (const run of runs) {
      const { scenario, system } = run;
      if (round > (scenario.maxRounds ?? rounds)) continue;
      // A scenario this build cannot run (n/a) says so once.
      if (run.rounds.some((r) => r.unavailable)) {
        step++;
        continue;
      }
      step++;
      const place = placeFor(scenario, system);
      const profileDir = join(PROFILES_DIR, `${scenario.id}.${system}.r${round}`);
      const profile = profiled.has(scenario.id);
      const execArgv = profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
      const spec: ChildSpec = {
        ...scenario.spec,
        system,
        target: place.target,
        // The child gives up by itself a little earlier, with a message saying what it was doing.
        timeLimitMs: Math.max(1_000, timeLimitMs - 5_000),
        ...(execArgv.length ? { execArgv } : {}),
        // On PostgreSQL the time is spent waiting for the server: count the statements too.
        ...(profile && serviceOf(scenario, system) === "postgres" ? { statementsFile: join(profileDir, "statements.json") } : {}),
      };
      if (profile) mkdirSync(profileDir, { recursive: true });
      process.stderr.write(`[${step}/${total}] ${scenario.id} on ${system}, round ${round} ... `);
      const at = monotonicNow();
      try {
        const result = await runChild(spec, { killAfterMs: timeLimitMs, execArgv, signal: interrupt.signal });
        run.rounds.push(result);
        run.wallMs.push(monotonicNow() - at);
        process.stderr.write(`${((monotonicNow() - at) / 1000).toFixed(1)} s: ${headline(result)}\n`);
        for (const warning of result.warnings ?? []) process.stderr.write(`  WARNING: ${warning}\n`);
      } catch (error) {
        process.stderr.write("FAILED\n");
        if (!interrupt.signal.aborted) {
          const message = (error as Error).message;
          run.failures.push(`round ${round}: ${message.split("\n")[0] ?? message}`);
          console.error(`  ${scenario.id} on ${system}, round ${round}: ${message}`);
          if (error instanceof ChildFailure && error.output) console.error(`  --- child output (tail) ---\n${error.output}\n  ---`);
        }
      } finally {
        await place.remove().catch((error: unknown) => {
          console.error(`could not remove the round's ${place.what}: ${(error as Error).message}`);
        });
      }
      if (interrupt.signal.aborted) break outer;
    }
  }
  if (interrupt.signal.aborted) {
    process.exitCode = 130;
    return;
  }

  // One entry per scenario, its cells in column order.
  const byScenario = new Map<string, Run[]>();
  for (const run of runs) byScenario.set(run.scenario.id, [...(byScenario.get(run.scenario.id) ?? []), run]);
  const report: Report = {
    mode: quick ? "quick" : "full",
    rounds,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    environment,
    systems: systems.filter((s) => runs.some((r) => r.system === s)),
    postgres: admin?.info ?? null,
    redis: redis?.info ?? null,
    loadAtEnd: os.loadavg()[0] ?? 0,
    wallMs: monotonicNow() - started,
    scenarios: [...byScenario.values()].map((group) => {
      const { scenario } = group[0] as Run;
      const { spec: _spec, maxRounds: _maxRounds, ...def } = scenario;
      return { def, cells: group.map((r) => summarizeCell(r.system, r.rounds, r.failures, r.wallMs)) };
    }),
  };
  console.log(renderMarkdown(report));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, "latest.json");
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  const failed = runs.filter((r) => r.failures.length);
  console.error(`\nwall time ${formatDuration(report.wallMs)}; results written to ${file}${profiled.size ? `; CPU profiles in ${PROFILES_DIR}` : ""}`);
  if (failed.length) {
    console.error(`${plural(failed.length, "scenario/system pair")} had failed rounds: ${failed.map((r) => `${r.scenario.id} on ${r.system}`).join(", ")}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
});
