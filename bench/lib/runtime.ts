import { createRuntime, type Runtime, type WorkerConfig } from "./underway.ts";
import { BenchLatency, BenchNoop } from "./tasks.ts";

/** The durability every scenario uses: the product's default. */
export const DURABILITY = "normal" as const;

/**
 * A started runtime on the round's store (a SQLite file or a postgres:// URL with the round's
 * schema), as an application would create it. `beforeStart`
 * runs on the created runtime first (to add event listeners before the worker can run anything).
 */
export async function openRuntime(
  db: string,
  worker: WorkerConfig | false,
  beforeStart?: (runtime: Runtime) => void,
): Promise<Runtime> {
  const runtime = createRuntime({
    db,
    tasks: [BenchNoop, BenchLatency],
    worker,
    logger: false,
    // SQLite only: the PostgreSQL store commits as the server is configured (synchronous_commit).
    durability: DURABILITY,
  });
  beforeStart?.(runtime);
  await runtime.start();
  return runtime;
}

/** Throws unless the store holds exactly `expected` tasks per state (states not named: 0). */
export async function expectCounts(runtime: Runtime, expected: Partial<Record<string, number>>, what: string): Promise<string> {
  const counts = await runtime.countTasks();
  const wrong = Object.entries(counts).filter(([state, n]) => n !== (expected[state] ?? 0));
  if (wrong.length > 0) {
    throw new Error(`${what}: countTasks() is ${JSON.stringify(counts)}, expected ${JSON.stringify(expected)}`);
  }
  return Object.entries(expected)
    .map(([state, n]) => `${(n ?? 0).toLocaleString("en-US")} ${state}`)
    .join(", ");
}
