import type { ChildSpec, IsolationMode } from "./protocol.ts";
import { BenchNoop, BenchProbe, BenchRunaway } from "./tasks.ts";
import { createRuntime, type Runtime, type WorkerConfig } from "./underway.ts";

/** The durability every underway round uses: the product's default. */
export const DURABILITY = "normal" as const;

type RuntimeConfig = Parameters<typeof createRuntime>[0];

/**
 * createRuntime's configuration with the isolation option, which the runtime may not know yet
 * (it is being added to src/): passed through as a variable, so TypeScript's excess-property check
 * does not reject it, and an older runtime simply ignores it (the isolation scenarios probe
 * whether it took effect).
 */
type ConfigWithIsolation = RuntimeConfig & { readonly isolation?: { readonly mode: IsolationMode } };

/** createRuntime's `db` for the round: the SQLite file, or the PostgreSQL URL naming the round's schema. */
export function underwayDb(spec: ChildSpec): string {
  const { sqliteFile, pgUrl, pgSchema } = spec.target;
  if (spec.system === "underway-sqlite" || spec.scenario === "limit-sqlite") {
    if (!sqliteFile) throw new Error(`${spec.system}: the spec names no SQLite file`);
    return sqliteFile;
  }
  if (!pgUrl || !pgSchema) throw new Error(`${spec.system}: the spec names no PostgreSQL URL and schema`);
  const url = new URL(pgUrl);
  url.searchParams.set("schema", pgSchema);
  return url.toString();
}

export interface OpenOptions {
  /** false: a process that only starts and inspects tasks. */
  readonly worker: WorkerConfig | false;
  /** Maintenance (lease rescue, retention) off, for the benchmark's own inspection runtime. */
  readonly maintenance?: false;
  readonly isolation?: IsolationMode;
  /** Runs on the created runtime before start() (to add event listeners before the worker runs anything). */
  readonly beforeStart?: (runtime: Runtime) => void;
}

/**
 * A started runtime on the round's store, created as an application would: the benchmark's task
 * classes, no logger, every other option at its default.
 */
export async function openRuntime(db: string, options: OpenOptions): Promise<Runtime> {
  const config: ConfigWithIsolation = {
    db,
    tasks: [BenchNoop, BenchRunaway, BenchProbe],
    worker: options.worker,
    logger: false,
    // SQLite only: the PostgreSQL store commits as the server is configured (synchronous_commit).
    durability: DURABILITY,
    ...(options.maintenance === false ? { maintenance: false as const } : {}),
    ...(options.isolation ? { isolation: { mode: options.isolation } } : {}),
  };
  const runtime = createRuntime(config);
  options.beforeStart?.(runtime);
  await runtime.start();
  return runtime;
}

/** States of tasks that are not done yet. */
const ENDED = new Set(["succeeded", "dead", "canceled"]);

/** Tasks stored and not ended (queued, running, failed and waiting for a retry). */
export async function pendingTasks(runtime: Runtime): Promise<number> {
  const counts: Record<string, number> = await runtime.countTasks();
  return Object.entries(counts).reduce((sum, [state, n]) => (ENDED.has(state) ? sum : sum + n), 0);
}
