/**
 * The systems the benchmark compares, as the orchestrator and the report know them: names, the
 * service each needs, the library behind it and the settings the benchmark gives it. The code
 * that drives each library runs in the child processes only (bench/systems/), so the orchestrator
 * loads none of them.
 */

export const QUEUE_SYSTEMS = [
  "underway-sqlite",
  "underway-postgres",
  "graphile-worker",
  "graphile-worker-batched",
  "pg-boss",
  "bullmq",
] as const;

export type QueueSystemId = (typeof QUEUE_SYSTEMS)[number];

/** The machine's limits are measured without a queue library: a pseudo-system of their own. */
export type SystemId = QueueSystemId | "machine";

export const ALL_SYSTEMS: readonly SystemId[] = [...QUEUE_SYSTEMS, "machine"];

/** What a round of the system needs from the orchestrator. */
export type Service = "sqlite" | "postgres" | "redis" | "none";

export interface SystemInfo {
  readonly id: SystemId;
  /** The column header. */
  readonly label: string;
  readonly service: Service;
  /** The npm package measured (its installed version goes in the report), or null. */
  readonly library: string | null;
  /** How the benchmark sets it up, in words, for the report's Systems table. */
  readonly settings: string;
}

export const SYSTEMS: Readonly<Record<SystemId, SystemInfo>> = {
  "underway-sqlite": {
    id: "underway-sqlite",
    label: "underway SQLite",
    service: "sqlite",
    library: null,
    settings:
      "`createRuntime({ db: <file>, worker: { concurrency: c }, logger: false })`, every other option at its default (isolation included: scenario 6 sets both modes; WAL, durability \"normal\", prefetch up to 500 while runs are short, no more than the slots run in half a second, claims of up to 500); a fresh file per round",
  },
  "underway-postgres": {
    id: "underway-postgres",
    label: "underway PostgreSQL",
    service: "postgres",
    library: null,
    settings:
      "as on SQLite with `db: postgres://…?schema=<round schema>`: a pool of 10 connections, plus one for LISTEN in a runtime with a worker (none in the enqueuing process)",
  },
  "graphile-worker": {
    id: "graphile-worker",
    label: "graphile-worker",
    service: "postgres",
    library: "graphile-worker",
    settings:
      "`run({ concurrency: c, maxPoolSize: max(10, c + 2), taskList, crontab: \"\", noHandleSignals: true })`, the pool size its typings recommend; otherwise defaults (no local queue, no batched completion, pollInterval 2 s, LISTEN/NOTIFY); enqueues through `makeWorkerUtils`: `addJob`, `addJobs`",
  },
  "graphile-worker-batched": {
    id: "graphile-worker-batched",
    label: "graphile-worker (batched)",
    service: "postgres",
    library: "graphile-worker",
    settings:
      "as graphile-worker, plus the batching settings of its performance page (worker.graphile.org/docs/performance): `localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0`",
  },
  "pg-boss": {
    id: "pg-boss",
    label: "pg-boss",
    service: "postgres",
    library: "pg-boss",
    settings:
      "`new PgBoss({ connectionString, schema })`, `createQueue` (standard policy); concurrency c as its maintainer advises for v10 (timgit/pg-boss#542): one `work(name, { batchSize: c, pollingIntervalSeconds: 0.5 }, jobs => Promise.allSettled(jobs.map(handler)))`, 0.5 s being the shortest interval it accepts; enqueues with `send`, `insert`",
  },
  bullmq: {
    id: "bullmq",
    label: "BullMQ",
    service: "redis",
    library: "bullmq",
    settings:
      "`new Queue(name, { connection, prefix })`, `new Worker(name, handler, { connection, prefix, concurrency: c })`, otherwise defaults (completed jobs kept); enqueues with `add`, `addBulk`",
  },
  machine: {
    id: "machine",
    label: "the machine (no queue)",
    service: "none",
    library: null,
    settings: "better-sqlite3, node-postgres and worker_threads used directly",
  },
};

/** The stores a system keeps its tasks in, for the report. */
export function storeOf(id: SystemId): string {
  const service = SYSTEMS[id].service;
  return service === "sqlite" ? "SQLite (embedded)" : service === "postgres" ? "PostgreSQL" : service === "redis" ? "Redis" : "–";
}

/**
 * Parses `--systems`: ids, or the groups `underway`, `peers`, `postgres`. The order is always the
 * table's; "machine" (the limits) is in unless the list leaves it out.
 */
export function parseSystems(text: string | undefined): SystemId[] | string {
  if (text === undefined) return [...ALL_SYSTEMS];
  const wanted = new Set<SystemId>();
  const groups: Record<string, readonly SystemId[]> = {
    underway: ["underway-sqlite", "underway-postgres"],
    peers: ["graphile-worker", "graphile-worker-batched", "pg-boss", "bullmq"],
    postgres: ALL_SYSTEMS.filter((s) => SYSTEMS[s].service === "postgres"),
    all: ALL_SYSTEMS,
  };
  for (const name of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const group = groups[name];
    if (group) group.forEach((s) => wanted.add(s));
    else if ((ALL_SYSTEMS as readonly string[]).includes(name)) wanted.add(name as SystemId);
    else return `unknown system ${JSON.stringify(name)}; known: ${ALL_SYSTEMS.join(", ")}, or the groups ${Object.keys(groups).join(", ")}`;
  }
  if (wanted.size === 0) return "--systems names no system";
  return ALL_SYSTEMS.filter((s) => wanted.has(s));
}
