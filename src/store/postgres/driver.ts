import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import type pg from "pg";
import type { PoolClient, QueryResultRow } from "pg";
import type {
  ClaimedTask,
  CompleteResult,
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
import { checkRetryFilter, checkTaskFilter, parseTaskId } from "../driver.ts";
import { checkHandOff, HELD_RUN_AT_MS } from "../driver.ts";
import type { ContinuationSpec, QueueDepth, RescuedDeadTask, ScheduleAdvanceParams, ScheduleUpsertParams, StoreState, TaskRetryFilter, TaskStats } from "../driver.ts";
import type { ScheduleInfo } from "../../tasks/schedules.ts";
import { compositionQueriesFor, type ScheduleRow } from "./composition-queries.ts";
import { activityBuckets, activityWindow, checkCountCap, zeroCounts } from "../task-activity.ts";
import { taskCentreQueriesFor } from "./task-centre-queries.ts";
import { TASK_STATES, type TaskFilter, type TaskInfo, type TaskPage, type TaskState } from "../../tasks/types.ts";
import { connectionError, describeTarget, parseConnectionString, pgModule, quoteSchema, type PostgresTarget } from "./connection.ts";
import { Listener } from "./listener.ts";
import { migrateSchema, migrationsTableExists, schemaIsCurrent, type MigrateTarget } from "./migrate.ts";
import { queriesFor, type Queries } from "./queries.ts";
import { initiatorContext } from "../initiator.ts";
import { statesTerm } from "../state-terms.ts";
import { fairKeyOf, taskInfoOf } from "../task-rows.ts";
import { byClaimOrder, claimedOf, type ClaimRow, type TaskRow } from "./rows.ts";

/** Inserts with a deduplication key tried while the key's holder keeps ending before it is read (taskInsert). */
const DEDUP_INSERT_ATTEMPTS = 10;

export interface PostgresDriverOptions {
  /** `postgres://user:password@host:port/database`; the password never shows in logs or errors. */
  readonly connectionString: string;
  /** The schema holding the store's tables, created by migrate(); also the LISTEN channel. Default "underway". */
  readonly schema?: string;
  /** Most pooled connections. Default 10. The listener has one more of its own. */
  readonly poolSize?: number;
  /** LISTEN for other processes' inserts and wake workers. Default true. */
  readonly watch?: boolean;
  /** How long opening a connection may take before it fails, ms. Default 10,000. */
  readonly connectTimeoutMs?: number;
  /**
   * Pooled connections opened and readied by warm() and kept open while idle (at most poolSize).
   * Default 0: connections open on demand and close after 10 s idle.
   */
  readonly warmConnections?: number;
}

const CAPABILITIES: DriverCapabilities = {
  skipLocked: true,
  notifications: "listen-notify",
  // timestamptz keeps µs; the driver stores and returns whole ms.
  timePrecisionMs: 1,
  multiHost: true,
};

const APPLICATION_NAME = "underway";
/** Inserts by this driver between two looks at the task table's statistics (see noteInserted). */
const ANALYZE_CHECK_ROWS = 1_000;

const statementNames = new Map<string, string>();

/** Statements built from filters come in a few shapes; beyond this many, new ones go unprepared. */
const MAX_PREPARED = 500;

/** A prepared statement's name: the same text, the same name, on every connection. */
function statementName(text: string): string | null {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= MAX_PREPARED) return null;
    name = `underway_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** SQLSTATEs of a statement naming a table or schema that migrate() has not created yet. */
const NOT_MIGRATED = new Set(["42P01", "3F000"]);

/** The shared store: a schema of a PostgreSQL database, used by any number of processes and hosts. */
export class PostgresDriver implements StorageDriver {
  readonly dialect = "postgres" as const;
  readonly capabilities = CAPABILITIES;
  readonly description: string;
  /** The schema's name, unquoted. */
  readonly schema: string;
  private readonly quotedSchema: string;
  private readonly target: PostgresTarget;
  private readonly clientConfig: pg.ClientConfig;
  private readonly pool: pg.Pool;
  private readonly sql: Queries;
  private readonly watch: boolean;
  private readonly warmConnections: number;
  private listener: Listener | null = null;
  private readonly wakeListeners = new Set<() => void>();
  private clockOffsetMs = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Rows this driver inserted since it last refreshed the task table's statistics, and when it looks next. */
  private insertedSinceAnalyze = 0;
  private nextStatisticsCheck = ANALYZE_CHECK_ROWS;
  private analyzing: Promise<void> | null = null;
  /** The transaction the current async context runs in, so calls made inside it run inside it. */
  private readonly txScope = new AsyncLocalStorage<DriverTransaction>();
  private readonly openTransactions = new Map<DriverTransaction, PoolClient>();
  /** Rows inserted in each open transaction, counted for the statistics when it commits. */
  private readonly insertedInTransaction = new Map<DriverTransaction, number>();

  constructor(options: PostgresDriverOptions) {
    this.schema = options.schema ?? "underway";
    this.quotedSchema = quoteSchema(this.schema);
    this.target = parseConnectionString(options.connectionString);
    this.description = `${describeTarget(this.target)} (schema ${this.schema})`;
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new Error(`poolSize must be a positive integer, got ${poolSize}`);
    this.watch = options.watch ?? true;
    const warm = options.warmConnections ?? 0;
    if (!Number.isInteger(warm) || warm < 0) throw new Error(`warmConnections must be a whole number, got ${warm}`);
    this.warmConnections = Math.min(warm, poolSize);
    this.clientConfig = {
      connectionString: options.connectionString,
      application_name: APPLICATION_NAME,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      keepAlive: true,
    };
    // The platform's tables live in the store's schema too: unqualified names resolve there first.
    this.pool = new (pgModule().Pool)({
      ...this.clientConfig,
      options: `-c search_path=${this.quotedSchema},public`,
      max: poolSize,
      min: this.warmConnections,
    });
    // An idle pooled connection that drops (server restart, pg_terminate_backend) is discarded by
    // the pool; without a handler its error would crash the process.
    this.pool.on("error", () => undefined);
    // A checked-out connection that the server ends between statements (pg_terminate_backend,
    // idle-in-transaction timeout, failover) emits "error" too; its next query then fails and the
    // connection is discarded, but without a listener the event would crash the process.
    this.pool.on("connect", (client) => {
      client.on("error", () => undefined);
    });
    this.sql = queriesFor(this.quotedSchema);
  }

  /** Reads the store's own table: a server that answers with the schema gone is not a store. */
  async ping(): Promise<void> {
    await this.query(`SELECT 1 FROM ${this.quotedSchema}.underway_tasks LIMIT 0`, []);
  }

  async clockNow(): Promise<number> {
    const [row] = await this.query<{ now: number }>(this.sql.clockNow, [this.clockOffsetMs]);
    if (!row) throw new Error("the database returned no time");
    return row.now;
  }

  clockShift(ms: number): void {
    this.clockOffsetMs += ms;
  }

  private migrateTarget(): MigrateTarget {
    return { schema: this.schema, quoted: this.quotedSchema, description: this.description, clockOffsetMs: this.clockOffsetMs };
  }

  async storeState(): Promise<StoreState> {
    this.assertOpen();
    const client = await this.connect();
    try {
      if (!(await migrationsTableExists(client, this.quotedSchema))) return "none";
      return (await schemaIsCurrent(client, this.migrateTarget())) ? "current" : "behind";
    } finally {
      client.release();
    }
  }

  async migrate(): Promise<void> {
    this.assertOpen();
    const client = await this.connect();
    let failure: unknown;
    try {
      await migrateSchema(client, this.migrateTarget());
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      client.release(brokenBy(failure));
    }
    if (this.watch) await this.startListening();
  }

  /**
   * Opens `warmConnections` pooled connections at once and has each server process plan the
   * queue's statements (prepared and explained, never run), so that its catalogs are loaded: the
   * first insert on a new server process took 2.5-4.6 ms, against 1.2 after this and 0.7 once
   * prepared (a script on this machine), and a connection opened on demand 4-6 ms more.
   */
  async warm(): Promise<void> {
    this.assertOpen();
    if (this.warmConnections === 0) return;
    // All held at once, so that the pool opens that many.
    const opened = await Promise.allSettled(Array.from({ length: this.warmConnections }, () => this.connect()));
    const failures: unknown[] = [];
    await Promise.all(
      opened.map(async (result) => {
        if (result.status === "rejected") {
          failures.push(result.reason);
          return;
        }
        try {
          await result.value.query(this.sql.warm);
          result.value.release();
        } catch (error) {
          failures.push(error);
          // Its session may keep a statement prepared by the failed batch: not kept.
          result.value.release(error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    if (failures.length > 0) throw failures[0];
  }

  async taskInsert(params: TaskInsertParams, tx?: DriverTransaction): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const [id] = await this.insertRows([params], tx);
      if (id !== undefined) return id;
      if (!params.dedupKey) throw new Error("the insert returned no id");
      // Nothing stored: a task with this deduplication key is waiting or running, and is the
      // answer. Unless it ended between the two statements: then the key is free, and the insert
      // is tried again.
      const [holder] = await this.query<{ id: string }>(this.sql.dedupHolder, [params.dedupKey], tx);
      if (holder) return holder.id;
      if (attempt >= DEDUP_INSERT_ATTEMPTS) {
        throw new Error(
          `could not start the task with dedupKey ${JSON.stringify(params.dedupKey)}: ${DEDUP_INSERT_ATTEMPTS} times the task holding the key ended before it could be read; start it again`,
        );
      }
    }
  }

  async taskInsertClaimed(params: TaskInsertParams, claim: { readonly workerId: string; readonly leaseMs: number }): Promise<{ id: string; claimed: ClaimedTask | null }> {
    checkHandOff(params);
    const [row] = await this.query<ClaimRow & { state: string }>(this.sql.insertClaimed, [
      this.clockOffsetMs,
      params.name,
      params.queue,
      params.priority,
      params.parameters,
      params.maxAttempts,
      params.timeoutMs,
      params.withUserConnection,
      params.initiator?.userId ?? null,
      initiatorContext(params.initiator),
      params.initiatorSignature ?? null,
      params.traceContext ?? null,
      fairKeyOf(params),
      claim.workerId,
      claim.leaseMs,
      this.schema,
    ]);
    if (!row) throw new Error("the insert returned no row");
    this.noteInserted(1);
    return { id: row.id, claimed: row.state === "running" ? claimedOf(row) : null };
  }

  async taskInsertMany(params: readonly TaskInsertParams[], tx?: DriverTransaction): Promise<string[]> {
    if (params.some((p) => p.dedupKey)) throw new Error("deduplication keys are for single inserts (taskInsert)");
    return this.insertRows(params, tx);
  }

  private async insertRows(params: readonly TaskInsertParams[], tx?: DriverTransaction): Promise<string[]> {
    if (tx) this.assertOwnTransaction(tx);
    if (params.length === 0) return [];
    // One task: the same parameters as scalars, for a statement without arrays.
    const one = params.length === 1;
    const column = <T>(pick: (p: TaskInsertParams) => T): T[] | T => (one ? pick(params[0]!) : params.map(pick));
    const values: unknown[] = [
      this.clockOffsetMs,
      column((p) => p.name),
      column((p) => p.queue),
      column((p) => p.priority),
      column((p) => p.parameters),
      column((p) => p.runAtMs ?? null),
      column((p) => p.delayMs ?? null),
      column((p) => p.maxAttempts),
      column((p) => p.timeoutMs),
      column((p) => p.withUserConnection),
      column((p) => p.initiator?.userId ?? null),
      column((p) => initiatorContext(p.initiator)),
      this.schema,
      column((p) => p.initiatorSignature ?? null),
      column((p) => p.traceContext ?? null),
      column(fairKeyOf),
    ];
    if (one) values.push(params[0]!.dedupKey ?? null, params[0]!.dedupUntilStart ?? false);
    else values.push(...fairPairs(params, values[15] as string[]));
    const [row] = await this.query<{ ids: string[] }>(one ? this.sql.insertOne : this.sql.insert, values, tx);
    const ids = row?.ids ?? [];
    this.noteInserted(ids.length, tx);
    return ids;
  }

  /**
   * The claim's plan depends on the planner knowing how many tasks wait: with statistics from
   * when few did (an empty table, or one of finished tasks), it reads every waiting task and sorts
   * them on each claim (7 ms a claim with 17,000 waiting, against 0.1 ms through the claim-order
   * index). Autovacuum refreshes them only a minute or more later. So every 1,000 rows it inserts
   * (counted when they commit), the driver reads how many waiting tasks the planner believes in
   * (its estimate of the claim-order index), and when it has inserted at least as many since its
   * last refresh (the waiting tasks may have doubled), it refreshes them at once, in the
   * background, on a connection of its own.
   */
  private noteInserted(rows: number, tx?: DriverTransaction): void {
    const joined = tx ?? this.inOpenTransaction();
    if (joined && this.openTransactions.has(joined)) {
      // Not visible to another connection before the transaction commits: counted then.
      this.insertedInTransaction.set(joined, (this.insertedInTransaction.get(joined) ?? 0) + rows);
      return;
    }
    this.insertedSinceAnalyze += rows;
    if (this.insertedSinceAnalyze < this.nextStatisticsCheck || this.analyzing || this.closed) return;
    this.analyzing = this.refreshStatistics();
  }

  private async refreshStatistics(): Promise<void> {
    let client: PoolClient | null = null;
    let failure: unknown;
    try {
      // Its own connection, whatever transaction the insert that led here ran in.
      client = await this.connect();
      const { rows } = await client.query<{ rows: number; may: boolean }>(this.sql.waitingEstimate);
      const planned = rows[0];
      if (planned && !planned.may) {
        this.nextStatisticsCheck = Infinity; // autovacuum's ANALYZE, later, is all there is
        return;
      }
      if (this.insertedSinceAnalyze >= Math.max(ANALYZE_CHECK_ROWS, planned?.rows ?? 0)) {
        this.insertedSinceAnalyze = 0;
        await client.query(this.sql.analyzeTasks);
      }
      this.nextStatisticsCheck = this.insertedSinceAnalyze + ANALYZE_CHECK_ROWS;
    } catch (error) {
      // The database went away, or was busy: looked at again after as many inserts more.
      failure = error;
      this.nextStatisticsCheck = this.insertedSinceAnalyze + ANALYZE_CHECK_ROWS;
    } finally {
      client?.release(brokenBy(failure));
      this.analyzing = null;
    }
  }

  async taskClaim(params: TaskClaimParams): Promise<ClaimedTask[]> {
    const filters: string[] = [];
    const extra: unknown[] = [];
    const filter = (condition: string, list: readonly string[] | undefined): void => {
      if (!list || list.length === 0) return;
      extra.push(list);
      filters.push(condition.replace("$N", `$${4 + extra.length}::text[]`));
    };
    filter("queue = ANY($N)", params.queues);
    filter("queue <> ALL($N)", params.excludeQueues);
    filter("name = ANY($N)", params.names);
    filter("name <> ALL($N)", params.excludeNames);
    const claimUpTo = async (limit: number, tx?: DriverTransaction): Promise<ClaimRow[]> => {
      // A claim that is its own transaction commits without waiting for the disk (durability.md,
      // "At-least-once"); one inside a transaction leaves that transaction's commit as it is.
      const unflushed = !tx && !this.inOpenTransaction();
      const statement = this.sql.claim(filters, unflushed);
      return this.query<ClaimRow>(statement, [this.clockOffsetMs, params.workerId, params.leaseMs, Math.max(0, Math.trunc(limit)), ...extra], tx);
    };
    let rows: ClaimRow[];
    const rate = params.rate;
    if (rate) {
      const name = params.names?.length === 1 ? params.names[0]! : null;
      if (name === null) throw new Error("a rate-limited claim names exactly one task name");
      // The window row stays locked until commit: claims of this name take turns, on every node.
      rows = await this.transaction(async (tx) => {
        const now = await this.clockNow();
        const [window] = await this.query<{ used: number }>(this.sql.rateWindow, [name, now - (now % rate.intervalMs)], tx);
        const left = Math.min(params.limit, rate.limit - (window?.used ?? 0));
        if (left <= 0) return [];
        const claimed = await claimUpTo(left, tx);
        if (claimed.length > 0) await this.query(this.sql.rateUse, [name, claimed.length], tx);
        return claimed;
      });
    } else {
      rows = await claimUpTo(params.limit);
    }
    // RETURNING gives no order; hand tasks out in claim order.
    return rows.sort(byClaimOrder).map(claimedOf);
  }

  async taskCompleteMany(outcomes: readonly RunOutcome[]): Promise<CompleteResult> {
    // An id that is not an id holds no task: rejected without asking the database.
    const sent = outcomes.map((_, i) => i).filter((i) => parseTaskId(outcomes[i]?.id ?? "") !== null);
    const valid = sent.map((i) => outcomes[i] as RunOutcome);
    const applied = new Set<number>();
    let continuations = false;
    if (valid.length) {
      const rows = await this.query<{ ord: number; continued: boolean }>(this.sql.complete, [
        this.clockOffsetMs,
        valid.map((o) => o.id),
        valid.map((o) => o.runSeq),
        valid.map((o) => o.kind),
        valid.map((o) => (o.kind === "failed" ? o.attempt : null)),
        valid.map((o) => (o.kind === "failed" ? JSON.stringify(o.error) : null)),
        valid.map((o) => (o.kind === "failed" ? o.retryDelayMs : null)),
        valid.map((o) => (o.kind === "succeeded" && o.result ? Buffer.from(o.result.buffer, o.result.byteOffset, o.result.byteLength) : null)),
      ]);
      for (const row of rows) {
        applied.add(sent[row.ord - 1] ?? -1);
        if (row.continued) continuations = true;
      }
    }
    return { rejected: outcomes.filter((_, i) => !applied.has(i)).map((o) => o.id), continuations };
  }

  async taskHeartbeat(params: TaskHeartbeatParams): Promise<HeldRun[]> {
    const runs = params.runs.filter((r) => parseTaskId(r.id) !== null);
    if (runs.length === 0) return [];
    const rows = await this.query<{ id: string; run_seq: number; canceled: boolean }>(this.sql.heartbeat, [
      this.clockOffsetMs,
      params.leaseMs,
      runs.map((r) => r.id),
      runs.map((r) => r.runSeq),
      params.workerId,
    ]);
    const held = new Map(rows.map((r) => [`${r.id}:${r.run_seq}`, r.canceled]));
    return params.runs.flatMap((r) => {
      const canceled = held.get(`${r.id}:${r.runSeq}`);
      return canceled === undefined ? [] : [canceled ? { id: r.id, runSeq: r.runSeq, canceled: true as const } : r];
    });
  }

  async taskCanceledRunsEnded(runs: readonly RunRef[]): Promise<void> {
    const valid = runs.filter((r) => parseTaskId(r.id) !== null);
    if (valid.length === 0) return;
    await this.query(this.sql.canceledRunsEnded, [this.clockOffsetMs, valid.map((r) => r.id), valid.map((r) => r.runSeq)]);
  }

  async taskProgressSet(params: RunRef & { progress: number; message: string | null }): Promise<void> {
    if (parseTaskId(params.id) === null) return;
    await this.query(this.sql.progress, [params.progress, params.message, params.id, params.runSeq]);
  }

  async taskRescueExpired(params: { limit: number }): Promise<TaskRescueResult> {
    const [row] = await this.query<{ retried: number; dead: number; dead_tasks: RescuedDeadTask[] }>(this.sql.rescue, [
      this.clockOffsetMs,
      Math.max(0, Math.trunc(params.limit)),
    ]);
    const result = { retried: row?.retried ?? 0, dead: row?.dead ?? 0, deadTasks: row?.dead_tasks ?? [] };
    // Rescued tasks are due at once: wake idle workers on every node, as an insert does.
    if (result.retried > 0) await this.query("SELECT pg_notify($1, '')", [this.schema]);
    return result;
  }

  async taskNextRunAt(params: { queues?: readonly string[] }): Promise<number | null> {
    const byQueue = Boolean(params.queues && params.queues.length);
    const [row] = await this.query<{ next: number | null }>(
      byQueue ? this.sql.nextRunAtOfQueues : this.sql.nextRunAt,
      byQueue ? [this.clockOffsetMs, params.queues] : [this.clockOffsetMs],
    );
    return row?.next ?? null;
  }

  async leaderAttemptElect(params: { name: string; holderId: string; ttlMs: number }): Promise<boolean> {
    const [row] = await this.query<{ holder: string }>(this.sql.elect, [this.clockOffsetMs, params.name, params.holderId, params.ttlMs]);
    return row?.holder === params.holderId;
  }

  async leaderResign(params: { name: string; holderId: string }): Promise<void> {
    await this.query(this.sql.resign, [params.name, params.holderId]);
  }

  async taskGet(id: string): Promise<TaskInfo | null> {
    if (parseTaskId(id) === null) return null;
    const [row] = await this.query<TaskRow>(this.sql.get, [id]);
    return row ? taskInfoOf(row, row.errors ?? [], Date.now() + this.clockOffsetMs) : null;
  }

  async taskList(filter: TaskFilter): Promise<TaskPage> {
    const { states, name, queue, userId, limit, beforeId } = checkTaskFilter(filter);
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (value: unknown): string => {
      args.push(value);
      return `$${args.length}`;
    };
    if (states.length) where.push(statesTerm(states));
    if (name !== undefined) where.push(`t.name = ${arg(name)}`);
    if (queue !== undefined) where.push(`t.queue = ${arg(queue)}`);
    if (userId !== undefined) where.push(`t.user_id = ${arg(userId)}`);
    if (beforeId !== undefined) where.push(`t.id < ${arg(beforeId)}::bigint`);
    const rows = await this.query<TaskRow>(this.sql.list(where, arg(limit + 1)), args);
    const more = rows.length > limit;
    const now = Date.now() + this.clockOffsetMs;
    const items = rows.slice(0, limit).map((r) => taskInfoOf(r, [], now));
    return { items, nextBeforeId: more && items.length ? (items[items.length - 1]?.id ?? null) : null };
  }

  async taskCountByState(): Promise<Record<TaskState, number>> {
    const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const row of await this.query<{ state: TaskState; n: number }>(this.sql.counts, [])) counts[row.state] = row.n;
    return counts;
  }

  async taskCancel(params: { id: string }): Promise<TaskState | null> {
    if (parseTaskId(params.id) === null) return null;
    const [row] = await this.query<{ previous: TaskState }>(this.sql.cancel, [this.clockOffsetMs, params.id]);
    return row?.previous ?? null;
  }

  async taskRetry(params: { id: string }): Promise<boolean> {
    if (parseTaskId(params.id) === null) return false;
    const [row] = await this.query<{ n: number }>(this.sql.retry, [this.clockOffsetMs, params.id]);
    if (row?.n !== 1) return false;
    await this.query("SELECT pg_notify($1, '')", [this.schema]);
    return true;
  }

  async taskDelete(params: { id: string }): Promise<boolean> {
    if (parseTaskId(params.id) === null) return false;
    const [row] = await this.query<{ n: number }>(this.sql.delete, [this.clockOffsetMs, params.id]);
    return row?.n === 1;
  }

  async taskDeleteFinished(params: { succeededAgeMs: number; failedAgeMs: number; limit: number }): Promise<number> {
    const [row] = await this.query<{ n: number }>(this.sql.deleteFinished, [this.clockOffsetMs, params.succeededAgeMs, params.failedAgeMs, params.limit]);
    return row?.n ?? 0;
  }

  // --- Scheduling, composition and observability (issue #9): SQL in ./composition-queries.ts. ---

  private compositionSqlOfSchema: ReturnType<typeof compositionQueriesFor> | null = null;
  private get compositionSql(): ReturnType<typeof compositionQueriesFor> {
    return (this.compositionSqlOfSchema ??= compositionQueriesFor(this.quotedSchema));
  }

  async taskInsertContinuation(params: TaskInsertParams, after: ContinuationSpec, tx?: DriverTransaction): Promise<string> {
    const parents = [...new Set(after.taskIds)];
    for (const id of parents) {
      if (parseTaskId(id) === null) throw new Error(`a continuation's predecessor must be a task id, got ${JSON.stringify(id)}`);
    }
    const insert = async (t: DriverTransaction): Promise<string> => {
      const found = new Set((await this.query<{ id: string }>(this.compositionSql.parentsFound, [parents], t)).map((r) => r.id));
      const missing = parents.filter((id) => !found.has(String(BigInt(id))));
      if (missing.length) throw new Error(`cannot continue after task ${missing.join(", ")}: no such task`);
      const id = await this.taskInsert({ ...params, runAtMs: HELD_RUN_AT_MS }, t);
      await this.query(this.compositionSql.continuationEdges, [id, parents, after.onlyOnSuccess], t);
      return id;
    };
    if (tx) {
      this.assertOwnTransaction(tx);
      return insert(tx);
    }
    return this.transaction(insert);
  }

  async taskContinuationsResolve(params: { limit: number }): Promise<{ released: number; canceled: number; consumed: number }> {
    const [row] = await this.query<{ released: number; canceled: number; consumed: number }>(this.compositionSql.resolve, [
      this.clockOffsetMs,
      Math.max(0, Math.trunc(params.limit)),
    ]);
    const result = { released: row?.released ?? 0, canceled: row?.canceled ?? 0, consumed: row?.consumed ?? 0 };
    // Released continuations are due at once: wake idle workers on every node.
    if (result.released > 0) await this.query("SELECT pg_notify($1, '')", [this.schema]);
    return result;
  }

  async taskResultGet(params: { id: string }): Promise<{ state: TaskState; result: Uint8Array | null } | null> {
    if (parseTaskId(params.id) === null) return null;
    const [row] = await this.query<{ state: TaskState; result: Buffer | null }>(this.compositionSql.result, [params.id]);
    return row ? { state: row.state, result: row.result ? new Uint8Array(row.result) : null } : null;
  }

  async taskRetryMany(given: TaskRetryFilter): Promise<number> {
    const params = checkRetryFilter(given);
    const { states } = params;
    const args: unknown[] = [this.clockOffsetMs];
    const arg = (value: unknown): string => {
      args.push(value);
      return `$${args.length}`;
    };
    const where = [statesTerm(states)];
    if (params.name !== undefined) where.push(`t.name = ${arg(params.name)}`);
    if (params.queue !== undefined) where.push(`t.queue = ${arg(params.queue)}`);
    if (params.ids !== undefined) {
      const ids = params.ids.filter((id) => parseTaskId(id) !== null);
      if (ids.length === 0) return 0;
      where.push(`t.id = ANY(${arg(ids)}::bigint[])`);
    }
    const [row] = await this.query<{ n: number }>(this.compositionSql.retryMany(where, arg(params.limit)), args);
    const queued = row?.n ?? 0;
    if (queued) await this.query("SELECT pg_notify($1, '')", [this.schema]);
    return queued;
  }

  async taskQueueDepth(): Promise<QueueDepth[]> {
    return this.query<QueueDepth & Record<string, unknown>>(this.compositionSql.queueDepth, [this.clockOffsetMs]);
  }

  async taskStats(params: { windowMs: number }): Promise<TaskStats> {
    const [counts, ended, clock] = await Promise.all([
      this.query<{ name: string; state: TaskState; count: number }>(this.compositionSql.counts, []),
      this.query<{ minute: number; state: TaskState; count: number }>(this.compositionSql.ended, [this.clockOffsetMs, params.windowMs]),
      this.query<{ now: number }>(this.compositionSql.now, [this.clockOffsetMs]),
    ]);
    return { counts, ended, now: clock[0]?.now ?? Date.now() };
  }

  async scheduleUpsert(p: ScheduleUpsertParams): Promise<void> {
    await this.query(this.compositionSql.upsert, [
      this.clockOffsetMs,
      p.name,
      p.cron,
      p.timeZone,
      p.taskName,
      p.parameters,
      p.queue,
      p.priority,
      p.maxAttempts,
      p.timeoutMs,
      p.missed,
      p.nextRunAtMs ?? HELD_RUN_AT_MS,
    ]);
  }

  async scheduleList(): Promise<ScheduleInfo[]> {
    return (await this.query<ScheduleRow>(this.compositionSql.list, [])).map(scheduleOf);
  }

  async scheduleListDue(params: { atMs: number; limit: number }): Promise<ScheduleInfo[]> {
    return (await this.query<ScheduleRow>(this.compositionSql.due, [params.atMs, params.limit])).map(scheduleOf);
  }

  async scheduleAdvance(p: ScheduleAdvanceParams): Promise<{ advanced: boolean; taskId: string | null }> {
    const [row] = await this.query<{ advanced: boolean; task_id: string | null }>(this.compositionSql.advance, [
      this.clockOffsetMs,
      p.name,
      p.expectedNextRunAtMs,
      p.nextRunAtMs ?? HELD_RUN_AT_MS,
      p.fireTickMs,
      this.schema,
    ]);
    const taskId = row?.task_id ?? null;
    if (taskId !== null) await this.query(this.compositionSql.noteTask, [p.name, taskId]);
    return { advanced: row?.advanced ?? false, taskId };
  }

  async scheduleSetPaused(p: { name: string; paused: boolean; nextRunAtMs?: number | null }): Promise<boolean> {
    const result = p.paused
      ? await this.run(this.compositionSql.pause, [this.clockOffsetMs, p.name])
      : await this.run(this.compositionSql.resume, [
          this.clockOffsetMs,
          p.name,
          p.nextRunAtMs === undefined ? null : (p.nextRunAtMs ?? HELD_RUN_AT_MS),
        ]);
    return result.rowCount === 1;
  }

  async scheduleDelete(p: { name: string }): Promise<boolean> {
    return (await this.run(this.compositionSql.delete, [p.name])).rowCount === 1;
  }

  async transaction<T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T> {
    // A transaction started inside another joins it, as on SQLite.
    const outer = this.inOpenTransaction();
    if (outer) return fn(outer);
    this.assertOpen();
    const client = await this.connect();
    let open = true;
    let broken: Error | undefined;
    const tx: DriverTransaction = {
      driver: this,
      execute: async (sql, params = []) => {
        if (!open) throw new Error("the transaction has ended; statements cannot run in it any more");
        return (await client.query<Record<string, unknown>>(sql, [...params])).rows;
      },
    };
    try {
      await client.query("BEGIN");
      this.openTransactions.set(tx, client);
      const result = await this.txScope.run(tx, () => fn(tx));
      // Ended before COMMIT is sent: a statement of a call still on its way (one not awaited,
      // one whose caller's thread was stopped) must not run after it, committed on its own.
      this.openTransactions.delete(tx);
      open = false;
      const commit = await client.query("COMMIT");
      // COMMIT of a transaction a failed statement aborted rolls back, without an error.
      if (commit.command === "ROLLBACK") {
        throw new Error("the transaction was rolled back: a statement in it failed (and its error was caught)");
      }
      const inserted = this.insertedInTransaction.get(tx);
      this.insertedInTransaction.delete(tx);
      if (inserted) this.noteInserted(inserted);
      return result;
    } catch (error) {
      // Ended before ROLLBACK is sent, as before COMMIT: what comes after it fails instead.
      this.openTransactions.delete(tx);
      open = false;
      // When the connection itself failed, ROLLBACK fails too, and the pool discards it.
      await client.query("ROLLBACK").catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    } finally {
      open = false;
      this.openTransactions.delete(tx);
      this.insertedInTransaction.delete(tx);
      client.release(broken);
    }
  }

  onWake(listener: () => void): () => void {
    this.wakeListeners.add(listener);
    if (this.watch && !this.closed) this.startListening().catch(() => undefined); // retried with backoff
    return () => this.wakeListeners.delete(listener);
  }

  // --- Read queries of the web application's task centre (see StorageDriver). ---

  private taskCentreSqlOfSchema: ReturnType<typeof taskCentreQueriesFor> | null = null;
  private get taskCentreSql(): ReturnType<typeof taskCentreQueriesFor> {
    return (this.taskCentreSqlOfSchema ??= taskCentreQueriesFor(this.quotedSchema));
  }

  async taskParametersGet(id: string): Promise<Uint8Array | null> {
    if (parseTaskId(id) === null) return null;
    const [row] = await this.query<{ parameters: Buffer }>(this.taskCentreSql.parameters, [id]);
    return row ? new Uint8Array(row.parameters) : null;
  }

  async taskCountByStateUpTo(params: TaskCountUpToParams): Promise<Record<TaskState, number>> {
    const cap = checkCountCap(params);
    const rows =
      params.userId === undefined
        ? await this.query<{ state: TaskState; n: number }>(this.taskCentreSql.countsUpTo, [cap])
        : await this.query<{ state: TaskState; n: number }>(this.taskCentreSql.countsUpToOfUser, [cap, TASK_STATES, params.userId]);
    const counts = zeroCounts();
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  async taskChangeMark(): Promise<string> {
    const [row] = await this.query<{ mark: string }>(this.taskCentreSql.changeMark, []);
    return row?.mark ?? "";
  }

  async taskActivityBuckets(params: TaskActivityParams): Promise<TaskActivityBuckets> {
    const [clock] = await this.query<{ now: number }>(this.taskCentreSql.now, [this.clockOffsetMs]);
    const window = activityWindow(params, Number(clock?.now));
    const byUser = params.userId !== undefined;
    const args = [window.fromMs, params.bucketMs, ...(byUser ? [params.userId] : [])];
    const [succeeded, failed] = await Promise.all([
      this.query<{ b: number; n: number }>(this.taskCentreSql.succeededBuckets(byUser), args),
      this.query<{ b: number; n: number }>(this.taskCentreSql.failedBuckets(byUser), args),
    ]);
    return activityBuckets(window, params.bucketMs, succeeded, failed);
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      const listener = this.listener;
      this.listener = null;
      await listener?.stop();
      await this.analyzing;
      await this.pool.end();
    })();
    return this.closing;
  }

  private startListening(): Promise<void> {
    this.listener ??= new Listener({
      client: { ...this.clientConfig, application_name: `${APPLICATION_NAME} listener` },
      channel: this.schema,
      quotedChannel: this.quotedSchema,
      wake: () => {
        for (const l of this.wakeListeners) l();
      },
    });
    return this.listener.ensure().catch((error: unknown) => {
      throw this.closed ? this.closedError() : connectionError(this.target, error);
    });
  }

  /** Runs one statement: on the transaction given, else the one open in this async context, else a pooled connection. */
  private async query<R extends QueryResultRow>(text: string, values: readonly unknown[], tx?: DriverTransaction): Promise<R[]> {
    return (await this.run<R>(text, values, tx)).rows;
  }

  private async run<R extends QueryResultRow>(
    text: string,
    values: readonly unknown[],
    tx?: DriverTransaction,
    queueSql = true,
  ): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    // The queue's own statements are prepared once per connection (parsed and planned once).
    const name = queueSql && values.length > 0 ? statementName(text) : null;
    const query: pg.QueryConfig = name ? { name, text, values: [...values] } : { text, values: [...values] };
    // A transaction given that has ended: its statement fails rather than run on its own.
    if (tx) this.assertOwnTransaction(tx);
    const joined = tx ?? this.inOpenTransaction();
    const txClient = joined ? this.openTransactions.get(joined) : undefined;
    if (txClient) {
      try {
        return await txClient.query<R>(query);
      } catch (error) {
        throw queueSql ? this.explain(error) : error;
      }
    }
    const client = await this.connect();
    let failure: unknown;
    try {
      return await client.query<R>(query);
    } catch (error) {
      failure = error;
      throw queueSql ? this.explain(error) : error;
    } finally {
      client.release(brokenBy(failure));
    }
  }

  async sqlQuery(sql: string, params: readonly unknown[], tx?: DriverTransaction): Promise<SqlResult> {
    if (tx) this.assertOwnTransaction(tx);
    const result = await this.run(sql, params.map(instantText), tx, false);
    return { rows: result.rows, affectedRows: result.rowCount ?? 0 };
  }

  private async connect(): Promise<PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw this.closed ? this.closedError() : connectionError(this.target, error);
    }
  }

  private explain(error: unknown): unknown {
    if (error instanceof pgModule().DatabaseError && error.code && NOT_MIGRATED.has(error.code)) {
      return new Error(`the store ${this.description} is not migrated yet: call migrate() first (${error.message})`, {
        cause: error,
      });
    }
    return error;
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): Error {
    return new Error(`the store ${this.description} is closed`);
  }

  private inOpenTransaction(): DriverTransaction | undefined {
    const scoped = this.txScope.getStore();
    return scoped && this.openTransactions.has(scoped) ? scoped : undefined;
  }

  private assertOwnTransaction(tx: DriverTransaction): void {
    if (!this.openTransactions.has(tx)) {
      throw new Error("the transaction passed is not open on this store (it has ended, or belongs to another store)");
    }
  }
}

/**
 * The error to release a pooled connection with, so the pool discards it: one that did not come
 * from the server (a dropped socket, a timeout), or a server error that ends the session
 * (FATAL, connection exception, operator intervention). A statement's own error keeps it.
 */
function brokenBy(error: unknown): Error | undefined {
  if (error === undefined) return undefined;
  if (error instanceof pgModule().DatabaseError) {
    const endsSession =
      error.severity === "FATAL" || error.severity === "PANIC" || /^(08|57P)/.test(error.code ?? "");
    return endsSession ? error : undefined;
  }
  return error instanceof Error ? error : new Error(String(error));
}

function scheduleOf(row: ScheduleRow): ScheduleInfo {
  return {
    name: row.name,
    cron: row.cron,
    timeZone: row.time_zone,
    taskName: row.task_name,
    queue: row.queue,
    priority: row.priority,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    missed: row.missed,
    paused: row.paused,
    nextRunAt: row.next_run_at >= HELD_RUN_AT_MS ? null : new Date(row.next_run_at),
    lastTick: row.last_tick === null ? null : new Date(row.last_tick),
    lastTaskId: row.last_task_id,
  };
}

/**
 * The insert statement's fair-share inputs for a call of several tasks: its distinct (fair key,
 * priority) pairs as two arrays, and for each task the number of its pair (from 1) and its rank
 * among the call's tasks of that pair (from 0): a user's tasks of a priority take consecutive
 * slots, in the order given.
 */
function fairPairs(params: readonly TaskInsertParams[], fairKeys: readonly string[]): [string[], number[], number[], number[]] {
  const keys: string[] = [];
  const priorities: number[] = [];
  const taken: number[] = [];
  const pairOf = new Map<string, number>();
  const pair: number[] = new Array<number>(params.length);
  const rank: number[] = new Array<number>(params.length);
  for (let i = 0; i < params.length; i++) {
    const key = fairKeys[i]!;
    const priority = params[i]!.priority;
    const id = `${priority}:${key}`;
    let n = pairOf.get(id);
    if (n === undefined) {
      keys.push(key);
      priorities.push(priority);
      taken.push(0);
      n = keys.length;
      pairOf.set(id, n);
    }
    pair[i] = n;
    rank[i] = taken[n - 1]!++;
  }
  return [keys, priorities, pair, rank];
}

/**
 * A Date as UTC text with its milliseconds (years 1 to 9999), which PostgreSQL reads as that
 * instant. node-postgres would send local time with the offset cut to whole minutes, moving dates
 * of zones whose historical offset has seconds (Europe/Berlin before 1893: +00:53:28).
 */
function instantText(value: unknown): unknown {
  if (!(value instanceof Date)) return value;
  const year = value.getUTCFullYear();
  return year >= 1 && year <= 9999 ? value.toISOString() : value;
}
