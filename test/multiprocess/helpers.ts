/** Shared by the multi-process tests: worker processes, the ledger, and server-side inspection. */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after } from "node:test";
import pg from "pg";
import type { Runtime, TaskInfo } from "../../src/index.ts";
import { TEST_POSTGRES_URL } from "../helpers.ts";

export const ROOT = join(import.meta.dirname, "..", "..");

/** The worker's lease when none is configured (the CLI has no option for it): WorkerConfig.leaseMs. */
export const DEFAULT_LEASE_MS = 15_000;

/** The store URL of a schema; `applicationName` names every connection the runtime opens. */
export function storeUrl(schema: string, applicationName?: string): string {
  const url = new URL(TEST_POSTGRES_URL);
  url.searchParams.set("schema", schema);
  // pg lets the connection string's parameters win over the driver's own application_name, for
  // the pool and the LISTEN connection alike.
  if (applicationName) url.searchParams.set("application_name", applicationName);
  return url.toString();
}

const children = new Set<ChildProcess>();
// Registered when this module loads, before any tempSchema() of the test file: children die
// before their schema is dropped. Normally the tests have stopped them already.
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
process.once("exit", () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Spawns a process that is SIGKILLed at the end of the file if it still runs. */
export function spawnTracked(args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(process.execPath, [...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  return child;
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The application_name of the worker's store connections. */
  readonly applicationName: string;
  /** Resolves when the CLI printed that the worker runs (migrated, listening, claiming). */
  readonly ready: Promise<void>;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it wrote to stdout and stderr, for failure messages. */
  output(): string;
}

/** Starts `underway worker` on the store with the ledger fixture's tasks. */
export function spawnWorker(options: { schema: string; name: string; concurrency: number }): WorkerProcess {
  const applicationName = `${options.schema}_${options.name}`;
  const child = spawnTracked(
    [
      join(ROOT, "bin", "underway.mjs"),
      "worker",
      "--db",
      storeUrl(options.schema, applicationName),
      "--tasks",
      "test/fixtures/ledger-tasks.ts",
      "--concurrency",
      String(options.concurrency),
      "--grace",
      "2000",
      // These tests are about several processes on one store, with up to 200 tasks in flight; the
      // ledger fixture opens a connection pool per thread, which isolated threads would multiply
      // past the server's limit. Isolation has its own tests (test/isolation/).
      "--isolation",
      "none",
    ],
    { ...process.env, UNDERWAY_LOG_LEVEL: "warn" },
  );
  let out = "";
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes("underway worker ")) markReady();
  });
  child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const failedEarly = exit.then(({ code, signal }) => {
    throw new Error(`worker ${options.name} exited (${code ?? signal}) before it ran:\n${out}`);
  });
  if (child.pid === undefined) throw new Error("the worker process did not start");
  const readyOrFailed = Promise.race([ready, failedEarly]);
  readyOrFailed.catch(() => undefined); // a worker nobody waits for may die unnoticed (killed at cleanup)
  return {
    child,
    pid: child.pid,
    applicationName,
    ready: readyOrFailed,
    exit,
    output: () => out,
  };
}

/**
 * SIGTERM: the worker finishes its tasks (within --grace) and exits 0. Waits until it runs first:
 * before the CLI installs its handler, SIGTERM just kills the process (on a busy machine a
 * replacement worker may still be starting when the work is done).
 */
export async function stopWorker(worker: WorkerProcess): Promise<void> {
  await worker.ready;
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill("SIGTERM");
  assert.deepEqual(await worker.exit, { code: 0, signal: null }, `worker ${worker.pid} did not stop cleanly:\n${worker.output()}`);
}

/** A connection of the test's own, for reading the ledger and pg_stat_activity. Closed after the file. */
export async function adminClient(applicationName = "underway-test-admin"): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, application_name: applicationName });
  await client.connect();
  after(() => client.end());
  return client;
}

export interface LedgerRow {
  readonly taskId: string;
  readonly attempt: number;
  readonly pid: number;
}

export async function ledgerRows(admin: pg.Client, schema: string): Promise<LedgerRow[]> {
  const { rows } = await admin.query<LedgerRow>(
    `SELECT task_id::text AS "taskId", attempt, pid FROM "${schema}".ledger ORDER BY task_id, attempt, at`,
  );
  return rows;
}

export async function ledgerCount(admin: pg.Client, schema: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".ledger`);
  return rows[0]?.n ?? 0;
}

/** The ledger rows of each task id. */
export function runsByTask(rows: readonly LedgerRow[]): Map<string, LedgerRow[]> {
  const byTask = new Map<string, LedgerRow[]>();
  for (const row of rows) {
    const list = byTask.get(row.taskId);
    if (list) list.push(row);
    else byTask.set(row.taskId, [row]);
  }
  return byTask;
}

/** Every task of the store, through the public listing, page by page. */
export async function allTasks(runtime: Runtime, states?: TaskInfo["state"][]): Promise<TaskInfo[]> {
  const tasks: TaskInfo[] = [];
  let beforeId: string | undefined;
  for (;;) {
    const page = await runtime.listTasks({ limit: 1000, ...(states ? { states } : {}), ...(beforeId ? { beforeId } : {}) });
    tasks.push(...page.items);
    if (!page.nextBeforeId) return tasks;
    beforeId = page.nextBeforeId;
  }
}

/** How many server backends carry one of these application names. */
export async function backendCount(admin: pg.Client, applicationNames: readonly string[]): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ANY($1::text[])",
    [applicationNames],
  );
  return rows[0]?.n ?? 0;
}

/**
 * From a fresh connection: the locks other backends hold on the schema's tables and indexes, and
 * whether every task row can be locked at once (no row lock is held anywhere).
 */
export async function locksOnSchema(schema: string): Promise<{ relationLocks: string[]; rowsLockable: boolean }> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, application_name: "underway-test-locks" });
  await client.connect();
  try {
    const { rows } = await client.query<{ lock: string }>(
      `SELECT c.relname || ' ' || l.mode || ' by ' || l.pid AS lock
       FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()`,
      [schema],
    );
    await client.query("BEGIN");
    let rowsLockable = true;
    try {
      await client.query(`SELECT id FROM "${schema}".underway_tasks FOR UPDATE NOWAIT`);
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03") throw error; // lock_not_available
      rowsLockable = false;
    } finally {
      await client.query("ROLLBACK");
    }
    return { relationLocks: rows.map((r) => r.lock), rowsLockable };
  } finally {
    await client.end();
  }
}
