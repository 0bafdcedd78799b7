/**
 * The benchmark's PostgreSQL side, for the orchestrator: reaching the server (starting a local
 * cluster that is down), describing it, and the per-round schemas (a fresh `bench_<pid>_<n>` per
 * round, dropped afterwards, whether the round passed or not).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import pg from "pg";
import { sleep } from "./clock.ts";

/** The server the benchmark uses unless `--pg` names another (trust auth on the dev machine). */
export const DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/test";

/** Round schemas: `bench_<pid of the orchestrator>_<round number>`. */
const SCHEMA_PATTERN = /^bench_(\d+)_(\d+)$/;

const APPLICATION_NAME = "underway bench";

/** How the server is set up: what makes its figures what they are. */
export interface PostgresInfo {
  /** The URL, the password masked. */
  readonly url: string;
  readonly server: string;
  /** node-postgres, the driver underway uses. */
  readonly nodePg: string;
  readonly synchronousCommit: string;
  readonly fsync: string;
  readonly walSyncMethod: string;
  readonly sharedBuffers: string;
  readonly maxConnections: string;
  /** Whether the benchmark had to start the server. */
  readonly startedByBenchmark: boolean;
}

/** Splits `?schema=` off a postgres URL, as src/runtime/database-url.ts does. */
export function splitSchema(url: string): { connectionString: string; schema: string | null } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get("schema");
  parsed.searchParams.delete("schema");
  return { connectionString: parsed.toString(), schema };
}

/** A plain identifier, quoted (the benchmark only makes `bench_<digits>_<digits>`). */
export function quoteIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a plain identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(an unparsable URL)";
  }
}

/** True when the error means nothing listens (server down), as opposed to a refusal by a running server. */
function serverDown(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  // 57P03: the database system is starting up (or shutting down).
  return code === "ECONNREFUSED" || code === "ENOENT" || code === "57P03";
}

function isLocal(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "";
  } catch {
    return false;
  }
}

/**
 * `pg_ctlcluster --skip-systemctl-redirect <version> main start` for every version in
 * /etc/postgresql. Says what happened, and whether any start succeeded.
 */
function startLocalClusters(): { note: string; anyStarted: boolean } {
  if (!existsSync("/etc/postgresql")) return { note: "no cluster to start: /etc/postgresql does not exist", anyStarted: false };
  const versions = readdirSync("/etc/postgresql");
  if (versions.length === 0) return { note: "no cluster to start: /etc/postgresql is empty", anyStarted: false };
  const outcomes: string[] = [];
  let anyStarted = false;
  for (const version of versions) {
    const command = `pg_ctlcluster --skip-systemctl-redirect ${version} main start`;
    try {
      execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"], {
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 60_000,
      });
      outcomes.push(`\`${command}\` succeeded`);
      anyStarted = true;
    } catch (error) {
      // pg_ctlcluster explains itself on stdout ("Cluster is already running.") or stderr.
      const e = error as { stdout?: Buffer; stderr?: Buffer; message: string };
      const said = `${e.stderr?.toString() ?? ""}\n${e.stdout?.toString() ?? ""}`.trim();
      const reason = (said || e.message).split("\n").filter(Boolean).slice(0, 3).join(" / ");
      outcomes.push(`\`${command}\` failed: ${reason}`);
    }
  }
  return { note: outcomes.join("; "), anyStarted };
}

/** The orchestrator's handle on the server: one short connection per operation. */
export class PostgresAdmin {
  private next = 0;

  private constructor(
    readonly url: string,
    readonly info: PostgresInfo,
  ) {}

  /**
   * Connects to `url`. When nothing listens on a local address, starts the local cluster(s) and
   * waits for them. Throws an error saying what was tried when the server cannot be reached.
   */
  static async open(url: string): Promise<PostgresAdmin> {
    const masked = maskPassword(url);
    let client: pg.Client | null = null;
    let failure: unknown = null;
    try {
      client = await connect(url);
    } catch (error) {
      failure = error;
    }
    let started = false;
    let note = "";
    if (!client && serverDown(failure) && isLocal(url)) {
      process.stderr.write(`PostgreSQL is not running at ${masked}; starting it ... `);
      const start = startLocalClusters();
      note = start.note;
      process.stderr.write(`${note}\n`);
      started = start.anyStarted;
      // pg_ctlcluster waits for the server itself; this is slack for its first connections.
      const until = performance.now() + (started ? 20_000 : 0);
      while (!client && performance.now() < until) {
        await sleep(500);
        try {
          client = await connect(url);
        } catch (error) {
          failure = error;
        }
      }
    }
    if (!client) {
      const reason = failure instanceof Error ? failure.message || String((failure as { code?: unknown }).code) : String(failure);
      throw new Error(
        [
          `PostgreSQL is not reachable at ${masked}: ${reason}`,
          ...(note ? [`  tried to start it: ${note}`] : []),
          "The benchmark runs every scenario on both stores. Start PostgreSQL, give a running server with",
          "--pg postgres://user@host:port/database, or leave PostgreSQL out with --stores sqlite.",
        ].join("\n"),
      );
    }
    try {
      const setting = async (name: string): Promise<string> =>
        (await client.query<{ v: string }>("SELECT current_setting($1) AS v", [name])).rows[0]?.v ?? "?";
      const require = createRequire(import.meta.url);
      const { version: nodePg } = require("pg/package.json") as { version: string };
      const info: PostgresInfo = {
        url: masked,
        server: await setting("server_version"),
        nodePg,
        synchronousCommit: await setting("synchronous_commit"),
        fsync: await setting("fsync"),
        walSyncMethod: await setting("wal_sync_method"),
        sharedBuffers: await setting("shared_buffers"),
        maxConnections: await setting("max_connections"),
        startedByBenchmark: started,
      };
      return new PostgresAdmin(url, info);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** A new round schema's name and the URL that makes the runtime use it (migrate creates it). */
  newRound(): { schema: string; url: string } {
    const schema = `bench_${process.pid}_${++this.next}`;
    const parsed = new URL(this.url);
    parsed.searchParams.set("schema", schema);
    return { schema, url: parsed.toString() };
  }

  /**
   * Drops a round's schema. The round's processes have exited, but the server may not have ended
   * their sessions yet: the DROP waits for their locks up to 5 s, then ends the sessions that
   * still hold locks in this schema (no one else uses it) and tries again.
   */
  async dropSchema(schema: string): Promise<void> {
    const client = await connect(this.url);
    try {
      await client.query("SET lock_timeout = '5s'");
      for (let attempt = 1; ; attempt++) {
        try {
          await client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`);
          return;
        } catch (error) {
          if ((error as { code?: unknown }).code !== "55P03" || attempt >= 3) throw error;
          await client.query(
            `SELECT pg_terminate_backend(pid) FROM (
               SELECT DISTINCT l.pid FROM pg_locks l
               JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()) holders`,
            [schema],
          );
        }
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Drops round schemas that an earlier benchmark left behind when it was killed: those whose
   * orchestrator process no longer exists. Returns their names.
   */
  async dropLeftovers(): Promise<string[]> {
    const client = await connect(this.url);
    let names: string[];
    try {
      names = (await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'")).rows
        .map((r) => r.nspname)
        .filter((name) => {
          const pid = Number(SCHEMA_PATTERN.exec(name)?.[1] ?? NaN);
          return Number.isInteger(pid) && pid !== process.pid && !processExists(pid);
        });
    } finally {
      await client.end().catch(() => undefined);
    }
    const dropped: string[] = [];
    for (const name of names) {
      try {
        await this.dropSchema(name);
        dropped.push(name);
      } catch (error) {
        process.stderr.write(`could not drop the leftover schema ${name}: ${(error as Error).message}\n`);
      }
    }
    return dropped;
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: APPLICATION_NAME, connectionTimeoutMillis: 10_000 });
  // A session the server ends (pg_terminate_backend, restart) must not crash the orchestrator.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === "EPERM";
  }
}
