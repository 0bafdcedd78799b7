import type Database from "better-sqlite3";
import { createRequire } from "node:module";
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync, statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { Checkpointer } from "./checkpointer.ts";
import type {
  ClaimedTask,
  DriverCapabilities,
  DriverTransaction,
  RunOutcome,
  HeldRun,
  RunRef,
  StorageDriver,
  TaskClaimParams,
  TaskHeartbeatParams,
  TaskInsertParams,
  TaskRescueResult,
  SqlResult,
  TaskActivityBuckets,
  TaskActivityParams,
  TaskCountUpToParams,
} from "../driver.ts";
import { checkHandOff, checkTaskFilter, HAND_OFF_LOOKAHEAD, HELD_RUN_AT_MS, parseTaskId } from "../driver.ts";
import type { ContinuationSpec, QueueDepth, RescuedDeadTask, ScheduleAdvanceParams, ScheduleUpsertParams, StoreState, TaskRetryFilter, TaskStats } from "../driver.ts";
import type { ScheduleInfo } from "../../tasks/schedules.ts";
import * as composition from "./composition.ts";
import { activityBuckets, activityWindow, checkCountCap, zeroCounts } from "../task-activity.ts";
import { loadMigrations, type Migration } from "../migrations.ts";
import { Lane } from "./lane.ts";
import { initiatorContext } from "../initiator.ts";
import { claimedTimeoutMs, fairKeyOf, taskInfoOf } from "../task-rows.ts";
import { decodedRow, initiatorFromRow, type ErrorRow, type TaskRow } from "./rows.ts";
import { COUNTS_BY_STATE, FAIR_SLOT, listStateTerm, QUEUED_LIST_BY_INDEX, stateTerm, WAITING, WAITING_UP_TO } from "./state-terms.ts";
import { TASK_STATES, type TaskFilter, type TaskInfo, type TaskPage, type TaskState } from "../../tasks/types.ts";

export interface SqliteDriverOptions {
  /** A file path, or ":memory:" (one process only). */
  readonly path: string;
  /**
   * "normal" (default): a process crash never loses a committed task; a power loss or OS crash
   * may lose the last commits. "full": every commit is fsynced first; nothing committed is lost.
   */
  readonly durability?: "normal" | "full";
  /**
   * How long a call waits for another process's write lock, ms. Default 5,000. The wait does not
   * block the event loop: the call tries again every few milliseconds, and the connection's other
   * calls wait behind it.
   */
  readonly busyTimeoutMs?: number;
  /**
   * Watch the database for other processes' writes and wake workers. Default true. The watch
   * starts with the first wake-up listener (onWake, a worker): a store that only starts tasks does
   * not watch, so its own writes cost it no event to read nor the kernel's work for its watch.
   */
  readonly watch?: boolean;
  /**
   * Copy the write-ahead log back into the database file from the process's checkpoint thread
   * (shared by its stores) rather than after a commit on this connection (see checkpointer.ts).
   * Default true; false: SQLite's own automatic checkpoint. A database in memory has no log.
   */
  readonly checkpointThread?: boolean;
  /**
   * Open an existing file read-only, changing nothing in it (no write-ahead log mode, no page
   * size): to look at what a file holds (storeState) before anything else opens it. Default false.
   */
  readonly lookOnly?: boolean;
}

/**
 * The page size of a database file this driver creates, bytes. Every commit writes each page it
 * changed to the write-ahead log whole: an enqueue changes about six (the row, its indexes, the
 * change mark), so with SQLite's default of 4,096 a one-task commit writes about 24 KB. With 2,048
 * it writes half that: one-at-a-time enqueues ran 14% faster here, while claims, completions and
 * bulk enqueues ran as fast as with 4,096 (1,024 made claims 10% and bulk enqueues 13% slower).
 * Large parameters fill more overflow pages: with 64 KB each, enqueues ran 25% slower
 * (docs/drivers.md).
 */
const PAGE_SIZE = 2_048;

/** When a file event shows no other connection's commit yet, looks again after these, ms (see checkOthersCommitted). */
const VERSION_RECHECK_MS = [1, 4, 16];

const CAPABILITIES: DriverCapabilities = {
  skipLocked: false,
  notifications: "file-watch",
  timePrecisionMs: 1,
  multiHost: false,
};

const TASK_COLUMNS = `id, name, queue, priority, state, parameters, run_at, attempt, max_attempts, run_seq,
  timeout_ms, worker_id, lease_expires_at, with_user_connection, user_id, user_context, progress,
  progress_message, last_error, created_at, started_at, finished_at, updated_at, waiting_for, schedule_name,
  (result IS NOT NULL) AS has_result`;

/**
 * Retention's choice of ended tasks: one range of underway_tasks_finished (state, finished_at) per
 * state, so a pass reads only the rows it deletes, however many younger ones the table holds. A
 * task stays while a continuation of it has not ended: gone, it would read as deleted, so a
 * continuation that waits for its success would be canceled, and one that reads its predecessors
 * when it runs (a process awaiting several tasks) would not find it. Parameters: succeeded before,
 * dead before, canceled before, limit.
 */
const UNRESOLVED = `NOT EXISTS (SELECT 1 FROM underway_continuations c JOIN underway_tasks k ON k.id = c.child_id
  WHERE c.parent_id = underway_tasks.id AND (c.consumed = 0 OR k.state NOT IN ('succeeded', 'dead', 'canceled')))`;
export const SQLITE_RETENTION_SELECT = `
  SELECT id FROM underway_tasks WHERE state = 'succeeded' AND finished_at < ? AND ${UNRESOLVED}
  UNION ALL SELECT id FROM underway_tasks WHERE state = 'dead' AND finished_at < ? AND ${UNRESOLVED}
  UNION ALL SELECT id FROM underway_tasks WHERE state = 'canceled' AND finished_at < ? AND ${UNRESOLVED} AND ${composition.NOT_STOPPING}
  LIMIT ?`;

/**
 * What a claim returns of each task, as an array (ClaimRow): better-sqlite3 builds a row object
 * property by property, about twice the cost of an array of the same values.
 */
const CLAIM_RETURNING = `RETURNING id, name, queue, priority, parameters, attempt, max_attempts, run_seq,
  timeout_ms, with_user_connection, user_id, user_context, run_at, initiator_sig, trace_context`;

type ClaimRow = [
  id: number,
  name: string,
  queue: string,
  priority: number,
  parameters: Uint8Array,
  attempt: number,
  maxAttempts: number,
  runSeq: number,
  timeoutMs: number,
  withUserConnection: number,
  userId: string | null,
  userContext: string | null,
  runAt: number,
  initiatorSig: string | null,
  traceContext: string | null,
];

/** What insertClaimed returns: a ClaimRow, then the state it stored (at HAND_OFF_STATE). */
type HandOffRow = [...ClaimRow, state: string];
const HAND_OFF_STATE = 15;

/** better-sqlite3, loaded when a SQLite store is first opened (a task thread borrows its process's store and never does). */
let sqliteLoaded: typeof Database | null = null;
function betterSqlite3(): typeof Database {
  return (sqliteLoaded ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database);
}

let migrationsLoaded: Migration[] | null = null;
/** The SQLite migrations, read once. */
function sqliteMigrations(): Migration[] {
  return (migrationsLoaded ??= loadMigrations(new URL("./migrations/", import.meta.url)));
}

/** The embedded store: one SQLite file in WAL mode, shared by any number of local processes. */
export class SqliteDriver implements StorageDriver {
  readonly dialect = "sqlite" as const;
  readonly schema = null;
  readonly capabilities = CAPABILITIES;
  readonly description: string;
  /** The database file's absolute path, or ":memory:". */
  readonly filePath: string;
  private readonly db: Database.Database;
  /**
   * Runs its argument in an IMMEDIATE transaction (a savepoint within one already open), with
   * one wrapper for every call: better-sqlite3's transaction() builds four wrappers and defines
   * their properties each time it is called, which every claim, outcome and hand-off paid (tens
   * of microseconds when the code is cold, as between tasks that arrive one at a time).
   */
  private readonly immediate: <T>(body: () => T) => T;
  private readonly lane = new Lane();
  private readonly busyTimeoutMs: number;
  private readonly wakeListeners = new Set<() => void>();
  private watcher: FSWatcher | null = null;
  /** A look at PRAGMA data_version is on its way, or due again (see checkOthersCommitted). */
  private versionCheckScheduled = false;
  private versionRecheck: NodeJS.Timeout | null = null;
  /** PRAGMA data_version as last read: it changes only with other connections' commits. */
  private seenDataVersion: number | null = null;
  private clockOffsetMs = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private statements: ReturnType<SqliteDriver["prepareStatements"]> | null = null;
  private readonly checkpointer: Checkpointer | null = null;
  /** The transaction the current async context runs in, so calls made inside it run inside it. */
  private readonly txScope = new AsyncLocalStorage<DriverTransaction>();

  constructor(private readonly options: SqliteDriverOptions) {
    const path = options.path === ":memory:" ? ":memory:" : resolve(options.path);
    const lookOnly = options.lookOnly === true && path !== ":memory:";
    if (path !== ":memory:" && !lookOnly) mkdirSync(dirname(path), { recursive: true });
    this.description = `sqlite:${path}`;
    this.filePath = path;
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    if (!Number.isFinite(this.busyTimeoutMs) || this.busyTimeoutMs < 0) {
      throw new RangeError(`busyTimeoutMs must be a number of milliseconds >= 0, got ${String(options.busyTimeoutMs)}`);
    }
    const cannotOpen = `cannot open the SQLite database ${path}`;
    // SQLite says "unable to open database file" or "disk I/O error" of a directory.
    if (path !== ":memory:" && statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`${cannotOpen}: it is a directory, not a database file`);
    }
    try {
      this.db = new (betterSqlite3())(path, lookOnly ? { readonly: true, fileMustExist: true } : {});
    } catch (error) {
      throw new Error(`${cannotOpen}: ${(error as Error).message}`, { cause: error });
    }
    try {
      // Opening may wait for a lock (another process converting a new file to WAL, or recovering
      // the log after a crash): the constructor cannot wait on a timer, so SQLite waits here.
      this.db.pragma(`busy_timeout = ${Math.round(this.busyTimeoutMs)}`);
      // SQLite reads the file only now: one that is not a database (another program's file) is
      // refused here, with its path, rather than at the first query with "file is not a database".
      // An empty file is a new database. Reading sets no page size: a new file still takes it.
      this.db.prepare("SELECT count(*) FROM sqlite_master").get();
    } catch (error) {
      this.db.close();
      const code = (error as { code?: unknown }).code;
      const why = code === "SQLITE_NOTADB" ? "the file is not a SQLite database" : (error as Error).message;
      throw new Error(`${cannotOpen}: ${why}`, { cause: error });
    }
    if (!lookOnly) {
      // Only a new file takes it (a file that has pages keeps its size): see PAGE_SIZE.
      this.db.pragma(`page_size = ${PAGE_SIZE}`);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma(`synchronous = ${options.durability === "full" ? "FULL" : "NORMAL"}`);
      this.db.pragma("foreign_keys = ON");
    }
    // From now on, SQLite's own wait for a lock would sleep in this thread, up to 100 ms at a
    // time: the whole process would stand still while another process writes. A locked call
    // fails at once instead and is tried again on a timer (see retryWhileBusy).
    this.db.pragma("busy_timeout = 0");
    this.db.defaultSafeIntegers(false);
    // SQLite's own lower() maps ASCII letters only ("Ä" stays "Ä"); PostgreSQL's maps them all.
    // This one lowercases as JavaScript does, so a search finds the same rows on either store.
    this.db.function("lower", { deterministic: true }, (value: unknown) => (typeof value === "string" ? value.toLowerCase() : value));
    this.immediate = this.db.transaction((body: () => unknown) => body()).immediate as <T>(body: () => T) => T;
    if (path !== ":memory:" && !lookOnly && options.checkpointThread !== false) {
      this.checkpointer = new Checkpointer(path, (pages) => {
        if (!this.closed) this.db.pragma(`wal_autocheckpoint = ${pages}`);
      });
    }
  }

  ping(): Promise<void> {
    return this.exclusive(() => {
      this.sql.get.get(0);
    });
  }

  clockNow(): Promise<number> {
    return Promise.resolve(this.now());
  }

  clockShift(ms: number): void {
    this.clockOffsetMs += ms;
  }

  private now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  storeState(): Promise<StoreState> {
    return this.exclusive(() => {
      const table = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'underway_migrations'").get();
      if (!table) return "none";
      const row = this.db.prepare("SELECT max(version) AS version FROM underway_migrations").get() as { version: number | null };
      const applied = row.version ?? 0;
      return applied === this.knownVersion(applied) ? "current" : "behind";
    });
  }

  /** The newest migration this underway knows; refuses a store at a newer version (`applied`). */
  private knownVersion(applied: number): number {
    const known = Math.max(0, ...sqliteMigrations().map((m) => m.version));
    if (applied > known) {
      throw new Error(`the database ${this.description} is at schema version ${applied}, newer than this underway (${known}); upgrade underway`);
    }
    return known;
  }

  async migrate(): Promise<void> {
    const migrations = sqliteMigrations();
    await this.exclusive(() => {
      // Foreign keys are off while migrations run (the pragma is a no-op inside a transaction):
      // a migration that rebuilds a table drops the old one, which with keys on would first
      // delete its rows and cascade to the rows that refer to them. The keys are checked before
      // the commit instead.
      this.db.pragma("foreign_keys = OFF");
      try {
        this.applyMigrations(migrations);
      } finally {
        this.db.pragma("foreign_keys = ON");
      }
    });
    this.statements = this.prepareStatements();
  }

  private applyMigrations(migrations: readonly Migration[]): void {
    // IMMEDIATE takes the write lock first, so two processes starting at once migrate in turn.
    this.immediate(() => {
      this.db.exec(
        "CREATE TABLE IF NOT EXISTS underway_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
      );
      const done = new Set(
        (this.db.prepare("SELECT version FROM underway_migrations").all() as { version: number }[]).map((r) => r.version),
      );
      this.knownVersion(Math.max(0, ...done));
      const pending = migrations.filter((m) => !done.has(m.version));
      for (const m of pending) {
        this.db.exec(m.sql);
        this.db.prepare("INSERT INTO underway_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, this.now());
      }
      if (pending.length > 0) this.checkReferences();
    });
  }

  /** Refuses (and so rolls back) migrations that left a row of underway's tables referring to nothing. */
  private checkReferences(): void {
    const broken = (this.db.pragma("foreign_key_check") as { table: string; rowid: number; parent: string }[]).filter((r) =>
      r.table.startsWith("underway_"),
    );
    const first = broken[0];
    if (first) {
      throw new Error(
        `cannot migrate the database ${this.description}: ${broken.length} row(s) would refer to nothing ` +
          `(first: ${first.table} row ${first.rowid} refers to a missing ${first.parent} row); nothing was changed`,
      );
    }
  }

  private prepareStatements() {
    const db = this.db;
    return {
      insert: db.prepare(
        `INSERT INTO underway_tasks (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
           with_user_connection, user_id, user_context, created_at, updated_at, initiator_sig, trace_context,
           fair_key, dedup_key, dedup_until_start, fair_slot)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ${FAIR_SLOT})
         ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL AND state IN ('queued', 'failed', 'running') DO NOTHING`,
      ),
      dedupHolder: db.prepare(
        "SELECT id FROM underway_tasks WHERE dedup_key = ? AND state IN ('queued', 'failed', 'running')",
      ),
      rateWindow: db.prepare("SELECT window_start, used FROM underway_rate_windows WHERE name = ?"),
      rateUse: db.prepare(
        `INSERT INTO underway_rate_windows (name, window_start, used) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET
           used = CASE WHEN window_start = excluded.window_start THEN used + excluded.used ELSE excluded.used END,
           window_start = excluded.window_start`,
      ),
      // taskInsertClaimed: a task due now, stored running and leased to the worker when none of
      // the first waiting tasks in claim order is due and fewer than HAND_OFF_LOOKAHEAD wait, else
      // queued. One statement, its own transaction (a write statement takes the write lock before
      // it reads). Stored as a claim leaves it: an insert of the running task writes fewer index
      // entries than an insert and an update. Parameters: the task's values, the worker, the
      // claim's time, the lease's end, FAIR_SLOT's, now (for the look). Returns a HandOffRow.
      insertClaimed: db
        .prepare(
          `INSERT INTO underway_tasks (name, queue, priority, parameters, run_at, max_attempts, timeout_ms,
             with_user_connection, user_id, user_context, created_at, updated_at, initiator_sig, trace_context,
             fair_key, worker_id, started_at, lease_expires_at, fair_slot, state, attempt, run_seq)
           SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
             CASE WHEN look.hand_off THEN ? END, CASE WHEN look.hand_off THEN ? END, CASE WHEN look.hand_off THEN ? END,
             ${FAIR_SLOT},
             CASE WHEN look.hand_off THEN 'running' ELSE 'queued' END, look.hand_off, look.hand_off
           FROM (SELECT count(*) < ${HAND_OFF_LOOKAHEAD} AND NOT coalesce(max(due), 0) AS hand_off
                 FROM (SELECT run_at <= ? AS due FROM underway_tasks INDEXED BY underway_tasks_fair WHERE ${WAITING}
                       ORDER BY priority DESC, fair_slot, id LIMIT ${HAND_OFF_LOOKAHEAD})) AS look
           ${CLAIM_RETURNING}, state`,
        )
        .raw(true),
      // The tasks of a claim, by id: a JSON array from claimSelect, read in the same transaction.
      claim: db.prepare(
        `UPDATE underway_tasks SET state = 'running', attempt = attempt + 1, run_seq = run_seq + 1,
           worker_id = ?, started_at = ?, lease_expires_at = ?, updated_at = ?, progress = NULL, progress_message = NULL,
           dedup_key = CASE WHEN dedup_until_start = 1 THEN NULL ELSE dedup_key END
         WHERE id IN (SELECT value FROM json_each(?)) AND ${WAITING}
         ${CLAIM_RETURNING}`,
      ).raw(true),
      succeed: db.prepare(
        `UPDATE underway_tasks SET state = 'succeeded', finished_at = ?, updated_at = ?, lease_expires_at = NULL, result = ?
         WHERE id = ? AND run_seq = ? AND state = 'running'`,
      ),
      // The successes of a batch that returned nothing, in one statement: a JSON array of
      // [id, run_seq] pairs, each id as the text it is given as (exact beyond 2^53). Returns the
      // ids it changed, as text. NOT INDEXED: each pair finds its row by id; left to itself the
      // planner reads the running tasks through an index of their state for each pair.
      succeedMany: db
        .prepare(
          `UPDATE underway_tasks NOT INDEXED SET state = 'succeeded', finished_at = ?, updated_at = ?, lease_expires_at = NULL, result = NULL
           FROM (SELECT value ->> 0 AS id, value ->> 1 AS run_seq FROM json_each(?)) AS o
           WHERE underway_tasks.id = o.id AND underway_tasks.run_seq = o.run_seq AND state = 'running'
           RETURNING CAST(underway_tasks.id AS TEXT)`,
        )
        .pluck(true),
      fail: db.prepare(
        `UPDATE underway_tasks SET state = ?, run_at = ?, finished_at = ?, updated_at = ?, lease_expires_at = NULL,
           last_error = ?
         WHERE id = ? AND run_seq = ? AND state = 'running'`,
      ),
      errorInsert: db.prepare(
        "INSERT OR REPLACE INTO underway_task_errors (task_id, attempt, at, name, message, stack) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      release: db.prepare(
        `UPDATE underway_tasks SET state = 'queued', attempt = attempt - 1, run_at = ?, updated_at = ?,
           worker_id = NULL, lease_expires_at = NULL, started_at = NULL
         WHERE id = ? AND run_seq = ? AND state = 'running'`,
      ),
      // A run of a task canceled meanwhile keeps its lease until it ends (see NOT_STOPPING).
      heartbeat: db
        .prepare(
          `UPDATE underway_tasks SET lease_expires_at = ?
           WHERE id = ? AND run_seq = ? AND worker_id = ? AND state IN ('running', 'canceled') AND lease_expires_at IS NOT NULL
           RETURNING state = 'canceled'`,
        )
        .pluck(true),
      canceledRunEnded: db.prepare(
        "UPDATE underway_tasks SET lease_expires_at = NULL, updated_at = ? WHERE id = ? AND run_seq = ? AND state = 'canceled' AND lease_expires_at IS NOT NULL",
      ),
      progress: db.prepare(
        `UPDATE underway_tasks SET progress = ?, progress_message = ?
         WHERE id = ? AND run_seq = ? AND state = 'running'`,
      ),
      // A running task without a lease (a row changed by hand: every claim sets one) counts as
      // expired, or no rescue would ever take it back.
      expired: db.prepare(
        `SELECT id, name, attempt, max_attempts, worker_id FROM underway_tasks
         WHERE state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < ?) ORDER BY lease_expires_at LIMIT ?`,
      ),
      rescue: db.prepare(
        `UPDATE underway_tasks SET state = ?, run_at = ?, finished_at = ?, updated_at = ?, lease_expires_at = NULL,
           worker_id = NULL, last_error = ?
         WHERE id = ? AND state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < ?)`,
      ),
      bumpChanges: db.prepare("UPDATE underway_changes SET n = n + 1 WHERE id = 1"),
      nextRunAt: db.prepare(
        "SELECT min(run_at) AS next FROM underway_tasks WHERE state IN ('queued', 'failed') AND run_at > created_at AND run_at > ?",
      ),
      get: db.prepare(`SELECT ${TASK_COLUMNS} FROM underway_tasks WHERE id = ?`),
      errors: db.prepare(
        "SELECT attempt, at, name, message, stack FROM underway_task_errors WHERE task_id = ? ORDER BY at, attempt",
      ),
      counts: db.prepare(COUNTS_BY_STATE),
      elect: db.prepare(
        `INSERT INTO underway_leaders (name, holder, elected_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET
           elected_at = CASE WHEN underway_leaders.holder = excluded.holder THEN underway_leaders.elected_at ELSE excluded.elected_at END,
           holder = excluded.holder, expires_at = excluded.expires_at
         WHERE underway_leaders.holder = excluded.holder OR underway_leaders.expires_at <= excluded.elected_at
         RETURNING holder`,
      ),
      resign: db.prepare("DELETE FROM underway_leaders WHERE name = ? AND holder = ?"),
    };
  }

  private get sql(): NonNullable<SqliteDriver["statements"]> {
    if (!this.statements) {
      throw new Error(this.closed ? `the store ${this.description} is closed` : "the store is not migrated yet: call migrate() first");
    }
    return this.statements;
  }

  /**
   * Runs fn alone on the connection. fn is one statement or one transaction (or reads), so when
   * another connection holds the write lock it fails before it changed anything, and runs again
   * once the lock is free (see retryWhileBusy). Inside an open transaction the lock is held.
   */
  private exclusive<T>(fn: () => T): Promise<T> {
    this.checkpointer?.note();
    const inTransaction = this.inOpenTransaction() !== undefined;
    if (!inTransaction && !this.lane.idle) return this.lane.run(() => this.runOrRetry(fn));
    try {
      return Promise.resolve(fn());
    } catch (error) {
      // Nothing else has run since: the retries keep its place in the lane.
      if (!inTransaction && isBusy(error)) return this.lane.run(() => this.retryWhileBusy(fn, error));
      return Promise.reject(error);
    }
  }

  /** Runs fn; while another connection holds the write lock, again on a timer (retryWhileBusy). */
  private runOrRetry<T>(fn: () => T): T | Promise<T> {
    try {
      return fn();
    } catch (error) {
      if (isBusy(error)) return this.retryWhileBusy(fn, error);
      throw error;
    }
  }

  /**
   * Runs fn again, after waits of a few milliseconds, until another connection lets go of the
   * write lock or busyTimeoutMs has passed since the first try. The event loop runs meanwhile.
   */
  private async retryWhileBusy<T>(fn: () => T, first: unknown): Promise<T> {
    const began = performance.now();
    for (let attempt = 0; ; attempt++) {
      const waited = performance.now() - began;
      if (waited >= this.busyTimeoutMs) {
        throw new Error(
          `the SQLite database ${this.filePath} stayed locked by another connection for ${Math.round(waited)} ms (busyTimeoutMs ${this.busyTimeoutMs})`,
          { cause: first },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(BUSY_RETRY_MAX_MS, 1 + (attempt >> 2), this.busyTimeoutMs - waited)));
      // close() waits behind this call in the lane: it gives up rather than hold the close.
      if (this.closing) throw new Error(`the store ${this.description} is closing`, { cause: first });
      try {
        return fn();
      } catch (error) {
        if (!isBusy(error)) throw error;
      }
    }
  }

  /**
   * Moves the change mark when `rows` tasks changed; returns `rows`. Every statement that changes
   * tasks calls it in its transaction, but inserts: the newest id tells those.
   */
  private changed(rows: number): number {
    if (rows > 0) this.sql.bumpChanges.run();
    return rows;
  }

  private insertRow(p: TaskInsertParams, now: number): string {
    const runAt = p.runAtMs ?? now + Math.max(0, p.delayMs ?? 0);
    const info = this.sql.insert.run(...taskValues(p, runAt, now), p.dedupKey ?? null, p.dedupUntilStart ? 1 : 0, ...fairSlotValues(p));
    if (info.changes === 0) {
      // A task with this deduplication key is waiting or running: that one is the answer.
      const holder = this.sql.dedupHolder.get(p.dedupKey) as { id: number } | undefined;
      if (!holder) throw new Error(`the task with the deduplication key ${JSON.stringify(p.dedupKey)} could not be stored or found`);
      return String(holder.id);
    }
    return String(info.lastInsertRowid);
  }

  async taskInsert(params: TaskInsertParams, tx?: DriverTransaction): Promise<string> {
    if (tx) {
      this.assertOwnTransaction(tx);
      return this.insertRow(params, this.now());
    }
    return this.exclusive(() => this.insertRow(params, this.now()));
  }

  async taskInsertMany(params: readonly TaskInsertParams[], tx?: DriverTransaction): Promise<string[]> {
    if (params.some((p) => p.dedupKey)) throw new Error("deduplication keys are for single inserts (taskInsert)");
    const insertAll = (): string[] => {
      const now = this.now();
      return params.map((p) => this.insertRow(p, now));
    };
    if (tx) {
      this.assertOwnTransaction(tx);
      return insertAll();
    }
    return this.exclusive(() => this.immediate(insertAll));
  }

  taskClaim(params: TaskClaimParams): Promise<ClaimedTask[]> {
    return this.exclusive(() => {
      const now = this.now();
      let limit = params.limit;
      let window: number | null = null;
      if (params.rate) {
        const name = params.names?.length === 1 ? params.names[0]! : null;
        if (name === null) throw new Error("a rate-limited claim names exactly one task name");
        window = now - (now % params.rate.intervalMs);
        const row = this.sql.rateWindow.get(name) as { window_start: number; used: number } | undefined;
        const used = row && row.window_start === window ? row.used : 0;
        limit = Math.min(limit, Math.max(0, params.rate.limit - used));
        if (limit === 0) return [];
      }
      const { sql, values } = claimSelect(params);
      const pick = this.statement(sql).pluck(true);
      // In a write transaction even when nothing is due: taking the write lock waits for another
      // process's insert to finish its commit, which a plain read could miss when the file watch
      // woke this worker at that insert's first write to the log (and no other write follows).
      const rows = this.immediate(() => {
        const ids = pick.all(now, ...values, limit) as number[];
        if (ids.length === 0) return [];
        const claimed = this.sql.claim.all(params.workerId, now, now + params.leaseMs, now, JSON.stringify(ids)) as ClaimRow[];
        if (window !== null && claimed.length > 0) this.sql.rateUse.run(params.names![0], window, claimed.length);
        this.changed(claimed.length);
        if (claimed.length < 2) return claimed;
        // RETURNING gives no order; hand tasks out in claim order, the order of `ids`.
        const position = new Map(ids.map((id, i) => [id, i]));
        return claimed.sort((a, b) => (position.get(a[0]) ?? 0) - (position.get(b[0]) ?? 0));
      });
      return rows.map((row) => claimedOf(row, now));
    });
  }

  async taskInsertClaimed(params: TaskInsertParams, claim: { readonly workerId: string; readonly leaseMs: number }): Promise<{ id: string; claimed: ClaimedTask | null }> {
    checkHandOff(params);
    return this.exclusive(() => {
      const now = this.now();
      const row = this.sql.insertClaimed.get(
        ...taskValues(params, now, now),
        claim.workerId,
        now,
        now + claim.leaseMs,
        ...fairSlotValues(params),
        now,
      ) as HandOffRow;
      // The new id moves the change mark, as any insert's does: no count to bump.
      return { id: String(row[0]), claimed: row[HAND_OFF_STATE] === "running" ? claimedOf(row as unknown as ClaimRow, now) : null };
    });
  }

  taskCompleteMany(outcomes: readonly RunOutcome[]): Promise<{ rejected: string[] }> {
    return this.exclusive(() =>
      this.immediate(() => {
        const now = this.now();
        const rejected: string[] = [];
        const sql = this.sql;
        // Successes without a result, the common outcome, in one statement when there are several.
        const pairs: [string, number][] = [];
        for (const o of outcomes) if (o.kind === "succeeded" && o.result === undefined) pairs.push([o.id, o.runSeq]);
        const applied = pairs.length >= 2 ? new Set(sql.succeedMany.all(now, now, JSON.stringify(pairs)) as string[]) : null;
        for (const o of outcomes) {
          let changes: number;
          if (applied !== null && o.kind === "succeeded" && o.result === undefined) {
            changes = applied.delete(o.id) ? 1 : 0;
          } else if (o.kind === "succeeded") {
            changes = sql.succeed.run(now, now, o.result ?? null, o.id, o.runSeq).changes;
          } else if (o.kind === "released") {
            changes = sql.release.run(now, now, o.id, o.runSeq).changes;
          } else {
            const dead = o.retryDelayMs === null;
            const error = { attempt: o.attempt, at: now, ...o.error };
            changes = sql.fail
              .run(dead ? "dead" : "failed", now + (o.retryDelayMs ?? 0), dead ? now : null, now, JSON.stringify(error), o.id, o.runSeq)
              .changes;
            if (changes) sql.errorInsert.run(o.id, o.attempt, now, o.error.name, o.error.message, o.error.stack ?? null);
          }
          if (changes === 0) rejected.push(o.id);
        }
        this.changed(outcomes.length - rejected.length);
        return { rejected };
      }),
    );
  }

  taskHeartbeat(params: TaskHeartbeatParams): Promise<HeldRun[]> {
    return this.exclusive(() =>
      this.immediate(() => {
        const lease = this.now() + params.leaseMs;
        const held: HeldRun[] = [];
        for (const r of params.runs) {
          const canceled = this.sql.heartbeat.get(lease, r.id, r.runSeq, params.workerId) as number | undefined;
          if (canceled !== undefined) held.push(canceled === 1 ? { id: r.id, runSeq: r.runSeq, canceled: true } : r);
        }
        return held;
      }),
    );
  }

  taskCanceledRunsEnded(runs: readonly RunRef[]): Promise<void> {
    if (runs.length === 0) return Promise.resolve();
    return this.exclusive(() => {
      this.immediate(() => {
        const now = this.now();
        let changed = 0;
        for (const r of runs) changed += this.sql.canceledRunEnded.run(now, r.id, r.runSeq).changes;
        this.changed(changed);
      });
    });
  }

  taskProgressSet(params: RunRef & { progress: number; message: string | null }): Promise<void> {
    return this.exclusive(() => {
      this.immediate(() => this.changed(this.sql.progress.run(params.progress, params.message, params.id, params.runSeq).changes));
    });
  }

  taskRescueExpired(params: { limit: number }): Promise<TaskRescueResult> {
    return this.exclusive(() =>
      this.immediate(() => {
        const now = this.now();
        const rows = this.sql.expired.all(now, params.limit) as {
          id: number;
          name: string;
          attempt: number;
          max_attempts: number;
          worker_id: string | null;
        }[];
        let retried = 0;
        let dead = 0;
        const deadTasks: RescuedDeadTask[] = [];
        for (const row of rows) {
          const isDead = row.attempt >= row.max_attempts;
          const error = {
            name: "LeaseExpiredError",
            message: `worker ${row.worker_id ?? "?"} stopped renewing its lease (it crashed, was killed or hung)`,
          };
          const changed = this.sql.rescue.run(
            isDead ? "dead" : "failed",
            now,
            isDead ? now : null,
            now,
            JSON.stringify({ attempt: row.attempt, at: now, ...error }),
            row.id,
            now,
          ).changes;
          if (!changed) continue;
          this.sql.errorInsert.run(row.id, row.attempt, now, error.name, error.message, null);
          if (isDead) {
            dead++;
            deadTasks.push({ id: String(row.id), name: row.name, attempt: row.attempt, message: error.message });
          } else retried++;
        }
        this.changed(retried + dead);
        return { retried, dead, deadTasks };
      }),
    );
  }

  taskNextRunAt(params: { queues?: readonly string[] }): Promise<number | null> {
    return this.exclusive(() => {
      const now = this.now();
      if (params.queues && params.queues.length) {
        const marks = params.queues.map(() => "?").join(", ");
        const row = this.db
          .prepare(
            `SELECT min(run_at) AS next FROM underway_tasks WHERE state IN ('queued', 'failed') AND run_at > created_at AND run_at > ? AND queue IN (${marks})`,
          )
          .get(now, ...params.queues) as { next: number | null };
        return row.next;
      }
      return (this.sql.nextRunAt.get(now) as { next: number | null }).next;
    });
  }

  taskGet(id: string): Promise<TaskInfo | null> {
    const key = parseTaskId(id);
    if (key === null) return Promise.resolve(null);
    return this.exclusive(() => {
      const row = this.sql.get.get(key) as TaskRow | undefined;
      if (!row) return null;
      return taskInfoOf(decodedRow(row), this.sql.errors.all(key) as ErrorRow[], this.now());
    });
  }

  async taskList(filter: TaskFilter): Promise<TaskPage> {
    const { states, name, queue, userId, limit, beforeId } = checkTaskFilter(filter);
    const where: string[] = [];
    const args: unknown[] = [];
    if (name !== undefined) {
      where.push("name = ?");
      args.push(name);
    }
    if (queue !== undefined) {
      where.push("queue = ?");
      args.push(queue);
    }
    if (userId !== undefined) {
      where.push("user_id = ?");
      args.push(userId);
    }
    if (beforeId !== undefined) {
      where.push("id < ?");
      args.push(BigInt(beforeId));
    }
    return this.exclusive(() => {
      // Queued tasks have no index in id order: how they are read depends on how many wait (see listStateTerm).
      const fewWaiting =
        states.includes("queued") && (this.statement(WAITING_UP_TO).get(QUEUED_LIST_BY_INDEX + 1) as { n: number }).n <= QUEUED_LIST_BY_INDEX;
      const terms = states.length ? [...where, `(${states.map((st) => listStateTerm(st, fewWaiting)).join(" OR ")})`] : where;
      const sql = `SELECT ${TASK_COLUMNS} FROM underway_tasks ${terms.length ? `WHERE ${terms.join(" AND ")}` : ""}
                   ORDER BY id DESC LIMIT ?`;
      const rows = this.statement(sql).all(...args, limit + 1) as TaskRow[];
      const more = rows.length > limit;
      const now = this.now();
      const items = rows.slice(0, limit).map((r) => taskInfoOf(decodedRow(r), [], now));
      return { items, nextBeforeId: more && items.length ? (items[items.length - 1]?.id ?? null) : null };
    });
  }

  taskCountByState(): Promise<Record<TaskState, number>> {
    return this.exclusive(() => {
      const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
      for (const row of this.sql.counts.all() as { state: TaskState; n: number }[]) counts[row.state] = row.n;
      return counts;
    });
  }

  leaderAttemptElect(params: { name: string; holderId: string; ttlMs: number }): Promise<boolean> {
    return this.exclusive(() => {
      const now = this.now();
      const row = this.sql.elect.get(params.name, params.holderId, now, now + params.ttlMs) as { holder: string } | undefined;
      return row?.holder === params.holderId;
    });
  }

  leaderResign(params: { name: string; holderId: string }): Promise<void> {
    return this.exclusive(() => {
      this.sql.resign.run(params.name, params.holderId);
    });
  }

  sqlQuery(sql: string, params: readonly unknown[], tx?: DriverTransaction): Promise<SqlResult> {
    const run = (): SqlResult => {
      const statement = this.statement(sql);
      const values = params.map(toSqliteValue);
      if (statement.reader) return { rows: statement.all(...values) as Record<string, unknown>[], affectedRows: 0 };
      return { rows: [], affectedRows: statement.run(...values).changes };
    };
    if (tx) {
      try {
        this.assertOwnTransaction(tx);
        return Promise.resolve(run());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.exclusive(run);
  }

  /** Prepared statements of the query builder, by SQL text (the builder's texts repeat). */
  private readonly statementCache = new Map<string, Database.Statement>();

  private statement(sql: string): Database.Statement {
    let statement = this.statementCache.get(sql);
    if (!statement) {
      if (this.closed) throw new Error(`the store ${this.description} is closed`);
      statement = this.db.prepare(sql);
      if (this.statementCache.size >= 500) this.statementCache.delete(this.statementCache.keys().next().value as string);
      this.statementCache.set(sql, statement);
    }
    return statement;
  }

  private inOpenTransaction(): DriverTransaction | undefined {
    const scoped = this.txScope.getStore();
    return scoped && this.openTransactions.has(scoped) ? scoped : undefined;
  }

  taskCancel(params: { id: string }): Promise<TaskState | null> {
    const key = parseTaskId(params.id);
    if (key === null) return Promise.resolve(null);
    return this.exclusive(() =>
      this.immediate(() => {
        const row = this.db.prepare("SELECT state FROM underway_tasks WHERE id = ?").get(key) as { state: TaskState } | undefined;
        if (!row || !["queued", "failed", "running"].includes(row.state)) return null;
        const now = this.now();
        // A running one keeps its lease until its attempt ends (see NOT_STOPPING).
        this.db
          .prepare(
            `UPDATE underway_tasks SET state = 'canceled', finished_at = ?, updated_at = ?,
               lease_expires_at = CASE WHEN state = 'running' THEN lease_expires_at END
             WHERE id = ? AND state IN ('queued', 'failed', 'running')`,
          )
          .run(now, now, key);
        this.changed(1);
        return row.state;
      }),
    );
  }

  taskRetry(params: { id: string }): Promise<boolean> {
    const key = parseTaskId(params.id);
    if (key === null) return Promise.resolve(false);
    return this.exclusive(() =>
      this.immediate(() => {
        const now = this.now();
        const changes = this.db
          .prepare(
            `UPDATE underway_tasks SET ${composition.REQUEUE}
             WHERE id = ? AND state IN ('failed', 'dead', 'canceled') AND ${composition.NOT_STOPPING}`,
          )
          .run(now, now, key, now).changes;
        return this.changed(changes) === 1;
      }),
    );
  }

  taskDelete(params: { id: string }): Promise<boolean> {
    const key = parseTaskId(params.id);
    if (key === null) return Promise.resolve(false);
    return this.exclusive(() =>
      this.immediate(
        () =>
          this.changed(
            this.db
              .prepare(`DELETE FROM underway_tasks WHERE id = ? AND state <> 'running' AND ${composition.NOT_STOPPING}`)
              .run(key, this.now()).changes,
          ) === 1,
      ),
    );
  }

  taskDeleteFinished(params: { succeededAgeMs: number; failedAgeMs: number; limit: number }): Promise<number> {
    return this.exclusive(() =>
      this.immediate(() => {
        const now = this.now();
        const deleted = this.db
          .prepare(`DELETE FROM underway_tasks WHERE id IN (${SQLITE_RETENTION_SELECT})`)
          .run(now - params.succeededAgeMs, now - params.failedAgeMs, now - params.failedAgeMs, now, params.limit).changes;
        return this.changed(deleted);
      }),
    );
  }

  // --- Scheduling, composition and observability (issue #9): SQL in ./composition.ts. ---

  taskInsertContinuation(params: TaskInsertParams, after: ContinuationSpec, tx?: DriverTransaction): Promise<string> {
    const insert = (): string => {
      const id = this.insertRow({ ...params, runAtMs: HELD_RUN_AT_MS }, this.now());
      composition.insertContinuation(this.db, id, after);
      return id;
    };
    if (tx) {
      try {
        this.assertOwnTransaction(tx);
        return Promise.resolve(insert());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.exclusive(() => this.immediate(insert));
  }

  taskContinuationsResolve(params: { limit: number }): Promise<{ released: number; canceled: number; consumed: number }> {
    return this.exclusive(() =>
      this.immediate(() => {
        const resolved = composition.resolveContinuations(this.db, this.now(), params.limit);
        // Every continuation counted down changed (released or still waiting for another parent).
        this.changed(resolved.canceled + resolved.countedDown);
        return { released: resolved.released, canceled: resolved.canceled, consumed: resolved.consumed };
      }),
    );
  }

  taskResultGet(params: { id: string }): Promise<{ state: TaskState; result: Uint8Array | null } | null> {
    return this.exclusive(() => composition.resultOf(this.db, params.id));
  }

  taskRetryMany(params: TaskRetryFilter): Promise<number> {
    return this.exclusive(() => this.immediate(() => this.changed(composition.retryMany(this.db, this.now(), params))));
  }

  taskQueueDepth(): Promise<QueueDepth[]> {
    return this.exclusive(() => composition.queueDepth(this.db, this.now()));
  }

  taskStats(params: { windowMs: number }): Promise<TaskStats> {
    return this.exclusive(() => composition.stats(this.db, this.now(), params.windowMs));
  }

  scheduleUpsert(params: ScheduleUpsertParams): Promise<void> {
    return this.exclusive(() => composition.scheduleUpsert(this.db, this.now(), params));
  }

  scheduleList(): Promise<ScheduleInfo[]> {
    return this.exclusive(() => composition.scheduleList(this.db));
  }

  scheduleListDue(params: { atMs: number; limit: number }): Promise<ScheduleInfo[]> {
    return this.exclusive(() => composition.scheduleListDue(this.db, params.atMs, params.limit));
  }

  scheduleAdvance(params: ScheduleAdvanceParams): Promise<{ advanced: boolean; taskId: string | null }> {
    return this.exclusive(() => this.immediate(() => composition.scheduleAdvance(this.db, this.now(), params)));
  }

  scheduleSetPaused(params: { name: string; paused: boolean; nextRunAtMs?: number | null }): Promise<boolean> {
    return this.exclusive(() => composition.scheduleSetPaused(this.db, this.now(), params));
  }

  scheduleDelete(params: { name: string }): Promise<boolean> {
    return this.exclusive(() => composition.scheduleDelete(this.db, params.name));
  }

  async transaction<T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T> {
    // A transaction started inside another joins it: SQLite has one writer per connection.
    const outer = this.inOpenTransaction();
    if (outer) return fn(outer);
    return this.lane.run(async () => {
      await this.runOrRetry(() => this.db.exec("BEGIN IMMEDIATE"));
      let open = true;
      const tx: DriverTransaction & { owner: SqliteDriver } = {
        driver: this,
        owner: this,
        execute: async (sql, params = []) => {
          if (!open) throw new Error("the transaction has ended; statements cannot run in it any more");
          const statement = this.db.prepare(sql);
          if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
          statement.run(...params);
          return [];
        },
      };
      this.openTransactions.add(tx);
      try {
        const result = await this.txScope.run(tx, () => fn(tx));
        this.db.exec("COMMIT");
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw error;
      } finally {
        open = false;
        this.openTransactions.delete(tx);
      }
    });
  }

  private readonly openTransactions = new Set<DriverTransaction>();

  private assertOwnTransaction(tx: DriverTransaction): void {
    if (!this.openTransactions.has(tx)) {
      throw new Error("the transaction passed is not open on this store (it has ended, or belongs to another store)");
    }
  }

  onWake(listener: () => void): () => void {
    this.wakeListeners.add(listener);
    if (this.options.watch !== false && !this.closed) this.startWatching();
    return () => this.wakeListeners.delete(listener);
  }

  /**
   * Other processes' commits append to the -wal file; inotify reports that at once, so idle
   * workers here look for work without polling. Our own writes trigger it too, and are told apart
   * by PRAGMA data_version, which moves only with other connections' commits: a worker woken by
   * its own claims and outcomes would claim again after each, and find nothing. Started by the
   * first onWake (and kept until close): with no one to wake, watching would only slow this
   * store's writes.
   */
  private startWatching(): void {
    if (this.options.path === ":memory:" || this.watcher) return;
    const file = resolve(this.options.path);
    const wal = `${basename(file)}-wal`;
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        if (name === wal) this.checkOthersCommitted();
      });
      this.seenDataVersion = this.dataVersion();
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      this.watcher = null; // polling remains
    }
  }

  /**
   * Wakes the listeners if another connection committed since the last look, read on the turn
   * after the file's events (coalesced), as a worker's look would be. A writer's last write to the
   * file comes just before its commit is visible (the commit is published in the shared-memory
   * index, which raises no event): when none is visible yet, it looks again 1, 4 and 16 ms later.
   */
  private checkOthersCommitted(): void {
    if (this.versionCheckScheduled) return;
    this.versionCheckScheduled = true;
    setImmediate(() => {
      this.versionCheckScheduled = false;
      this.lookForOthersCommit(0);
    });
  }

  private lookForOthersCommit(step: number): void {
    if (this.versionRecheck) clearTimeout(this.versionRecheck);
    this.versionRecheck = null;
    if (this.closed) return;
    const version = this.dataVersion();
    if (version === null || version !== this.seenDataVersion) {
      this.seenDataVersion = version;
      for (const l of this.wakeListeners) l();
      return;
    }
    const delay = VERSION_RECHECK_MS[step];
    if (delay === undefined) return;
    this.versionRecheck = setTimeout(() => this.lookForOthersCommit(step + 1), delay);
    this.versionRecheck.unref();
  }

  /** PRAGMA data_version; null where it cannot tell (unreadable, or read in an open transaction). */
  private dataVersion(): number | null {
    // Inside an open transaction the connection may not see others' commits yet.
    if (this.closed || this.db.inTransaction) return null;
    try {
      return this.statement("PRAGMA data_version").pluck().get() as number;
    } catch {
      return null; // busy, say: wake anyway
    }
  }

  // --- Read queries of the web application's task centre (see StorageDriver). ---

  taskParametersGet(id: string): Promise<Uint8Array | null> {
    const key = parseTaskId(id);
    if (key === null) return Promise.resolve(null);
    return this.exclusive(() => {
      const row = this.db.prepare("SELECT parameters FROM underway_tasks WHERE id = ?").get(key) as { parameters: Uint8Array } | undefined;
      return row ? new Uint8Array(row.parameters) : null;
    });
  }

  taskCountByStateUpTo(params: TaskCountUpToParams): Promise<Record<TaskState, number>> {
    // One bounded index range per state: see stateTerm, or (user_id, state, id) for one user.
    return this.exclusive(() => {
      const cap = checkCountCap(params);
      const counts = zeroCounts();
      for (const state of TASK_STATES) {
        const row =
          params.userId === undefined
            ? this.statement(`SELECT count(*) AS n FROM (SELECT 1 FROM underway_tasks WHERE ${stateTerm(state)} LIMIT ?)`).get(cap)
            : this.statement("SELECT count(*) AS n FROM (SELECT 1 FROM underway_tasks WHERE user_id = ? AND state = ? LIMIT ?)").get(params.userId, state, cap);
        counts[state] = (row as { n: number }).n;
      }
      return counts;
    });
  }

  /** The newest id (inserts) and the change counter (every other change to tasks, see `changed`). */
  taskChangeMark(): Promise<string> {
    return this.exclusive(() => {
      const row = this.db
        .prepare("SELECT (SELECT max(id) FROM underway_tasks) AS newest, (SELECT n FROM underway_changes WHERE id = 1) AS n")
        .get() as { newest: number | null; n: number | null };
      return `${row.newest ?? 0}:${row.n ?? 0}`;
    });
  }

  taskActivityBuckets(params: TaskActivityParams): Promise<TaskActivityBuckets> {
    return this.exclusive(() => {
      const window = activityWindow(params, this.now());
      const { bucketMs } = params;
      const byUser = params.userId === undefined ? "" : "AND t.user_id = ?";
      const userArgs = params.userId === undefined ? [] : [params.userId];
      const succeeded = this.db
        .prepare(
          `SELECT CAST((t.finished_at - ?) / ? AS INTEGER) AS b, count(*) AS n FROM underway_tasks t
           WHERE t.state = 'succeeded' AND t.finished_at >= ? ${byUser} GROUP BY b`,
        )
        .all(window.fromMs, bucketMs, window.fromMs, ...userArgs) as { b: number; n: number }[];
      const failed = this.db
        .prepare(
          `SELECT CAST((e.at - ?) / ? AS INTEGER) AS b, count(*) AS n FROM underway_task_errors e
           ${params.userId === undefined ? "" : "JOIN underway_tasks t ON t.id = e.task_id"}
           WHERE e.at >= ? ${byUser} GROUP BY b`,
        )
        .all(window.fromMs, bucketMs, window.fromMs, ...userArgs) as { b: number; n: number }[];
      return activityBuckets(window, bucketMs, succeeded, failed);
    });
  }

  /** Closes the connection (every caller waits for the same close). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // The checkpoint thread lets go of the file first: this connection, the last, then removes the log.
      await this.checkpointer?.close();
      await this.lane.run(() => {
        this.closed = true;
        this.watcher?.close();
        this.watcher = null;
        if (this.versionRecheck) clearTimeout(this.versionRecheck);
        this.statements = null;
        this.db.close();
      });
    })();
    return this.closing;
  }
}

/** The most a call waits between tries while another connection holds the write lock, ms. */
const BUSY_RETRY_MAX_MS = 4;

/** SQLite's answer when another connection holds the lock a statement needs (SQLITE_BUSY and its extended codes). */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

/** SQLite binds numbers, strings, bigints, buffers and null: booleans become 0/1, Dates ms. */
function toSqliteValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}


/**
 * The values of an inserted task's first 15 columns (name ... fair_key), as both insert
 * statements list them, with its run-at and the time of the insert.
 */
function taskValues(p: TaskInsertParams, runAt: number, now: number): unknown[] {
  return [
    p.name,
    p.queue,
    p.priority,
    p.parameters,
    runAt,
    p.maxAttempts,
    p.timeoutMs,
    p.withUserConnection ? 1 : 0,
    p.initiator?.userId ?? null,
    initiatorContext(p.initiator),
    now,
    now,
    p.initiatorSignature ?? null,
    p.traceContext ?? null,
    fairKeyOf(p),
  ];
}

/** The parameters of FAIR_SLOT: the priority, the key, the priority. */
function fairSlotValues(p: TaskInsertParams): unknown[] {
  return [p.priority, fairKeyOf(p), p.priority];
}

/**
 * The ids of the due tasks a claim takes: in priority, then fair-share order, filtered by queue
 * and name. The text depends only on how many queues and names are given, so the statement cache
 * keeps a handful. Parameters: now, the filter values, limit. The claim then updates those rows by
 * id (the `claim` statement): an UPDATE whose WHERE held this SELECT, ORDER BY and LIMIT included,
 * cost about 0.1 ms a statement before it touched a row, also when nothing was due.
 */
function claimSelect(params: TaskClaimParams): { sql: string; values: string[] } {
  const where: string[] = [];
  const values: string[] = [];
  const filter = (column: string, list: readonly string[] | undefined, not: boolean): void => {
    if (!list || list.length === 0) return;
    where.push(`AND ${column} ${not ? "NOT IN" : "IN"} (${list.map(() => "?").join(", ")})`);
    values.push(...list);
  };
  filter("queue", params.queues, false);
  filter("queue", params.excludeQueues, true);
  filter("name", params.names, false);
  filter("name", params.excludeNames, true);
  return {
    sql: `SELECT id FROM underway_tasks INDEXED BY underway_tasks_fair
          WHERE ${WAITING} AND run_at <= ? ${where.join(" ")}
          ORDER BY priority DESC, fair_slot, id LIMIT ?`,
    values,
  };
}

function claimedOf(row: ClaimRow, claimedAtMs: number): ClaimedTask {
  const [id, name, queue, priority, parameters, attempt, maxAttempts, runSeq, timeoutMs, withUserConnection, userId, userContext, runAt, initiatorSig, traceContext] = row;
  return {
    id: String(id),
    name,
    queue,
    priority,
    parameters,
    attempt,
    maxAttempts,
    runSeq,
    timeoutMs: claimedTimeoutMs(timeoutMs),
    withUserConnection: withUserConnection === 1,
    initiator: initiatorFromRow(userId, userContext),
    initiatorSignature: initiatorSig,
    runAtMs: runAt,
    claimedAtMs,
    traceContext,
  };
}
