/**
 * The benchmark's Redis side, for the orchestrator (BullMQ's store): reaching the server
 * (starting a local one that is down), describing its persistence, and the per-round key prefixes
 * (`bench_<pid>_<n>`, deleted after the round, and at the next start if a run was killed).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { Redis } from "ioredis";
import { sleep } from "./clock.ts";

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

const PREFIX_PATTERN = /^bench_(\d+)_(\d+)$/;

/**
 * How a local Redis is started when none answers: no snapshots, no append-only file (the
 * machine's CI setup). What it keeps on disk is read back from the server either way.
 */
const START_ARGS = [
  "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no",
  "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
];

export interface RedisInfo {
  readonly url: string;
  readonly version: string;
  /** RDB snapshot rules ("" = none). */
  readonly save: string;
  readonly appendonly: string;
  readonly appendfsync: string;
  readonly startedByBenchmark: boolean;
}

/** What an acknowledged write survives on this server, in words. */
export function redisDurability(info: RedisInfo): string {
  if (info.appendonly === "yes") {
    return info.appendfsync === "always"
      ? "append-only file, fsync per write"
      : `append-only file, fsync ${info.appendfsync === "everysec" ? "once a second" : "left to the OS"} (a power loss may lose the last writes)`;
  }
  return info.save.trim() === ""
    ? "nothing on disk (no snapshots, no append-only file): a restart loses every job"
    : `snapshots only (save ${info.save}): a crash loses what came after the last snapshot`;
}

function client(url: string): Redis {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on("error", () => undefined);
  return redis;
}

async function connect(url: string): Promise<Redis> {
  const redis = client(url);
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}

function isLocal(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
  } catch {
    return false;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === "EPERM";
  }
}

export class RedisAdmin {
  private next = 0;

  private constructor(
    readonly url: string,
    readonly info: RedisInfo,
  ) {}

  /** Connects to `url`; when nothing answers on a local address, starts redis-server and waits up to 10 s. */
  static async open(url: string): Promise<RedisAdmin> {
    let redis: Redis | null = null;
    let failure: unknown = null;
    try {
      redis = await connect(url);
    } catch (error) {
      failure = error;
    }
    let started = false;
    let note = "";
    if (!redis && isLocal(url)) {
      process.stderr.write(`Redis is not answering at ${url}; starting it ... `);
      try {
        if (!existsSync("/var/lib/redis") || !existsSync("/var/log/redis")) throw new Error("/var/lib/redis or /var/log/redis is missing");
        execFileSync("redis-server", START_ARGS, { stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
        started = true;
        note = `\`redis-server ${START_ARGS.join(" ")}\` succeeded`;
      } catch (error) {
        note = `redis-server failed: ${(error as Error).message.split("\n")[0] ?? ""}`;
      }
      process.stderr.write(`${note}\n`);
      const until = performance.now() + (started ? 10_000 : 0);
      while (!redis && performance.now() < until) {
        await sleep(250);
        try {
          redis = await connect(url);
        } catch (error) {
          failure = error;
        }
      }
    }
    if (!redis) {
      throw new Error(
        [
          `Redis is not reachable at ${url}: ${failure instanceof Error ? failure.message : String(failure)}`,
          ...(note ? [`  tried to start it: ${note}`] : []),
          "BullMQ needs it. Start Redis, give one with --redis redis://host:port, or leave BullMQ out with --systems.",
        ].join("\n"),
      );
    }
    try {
      const config = async (name: string): Promise<string> => {
        const answer = (await redis.config("GET", name)) as string[];
        return answer[1] ?? "?";
      };
      const server = await redis.info("server");
      const version = /redis_version:(\S+)/.exec(server)?.[1] ?? "?";
      const info: RedisInfo = {
        url,
        version,
        save: await config("save"),
        appendonly: await config("appendonly"),
        appendfsync: await config("appendfsync"),
        startedByBenchmark: started,
      };
      return new RedisAdmin(url, info);
    } finally {
      redis.disconnect();
    }
  }

  /** A new round's key prefix. */
  newPrefix(): string {
    return `bench_${process.pid}_${++this.next}`;
  }

  /** Deletes every key under `prefix:`. */
  async dropPrefix(prefix: string): Promise<number> {
    if (!PREFIX_PATTERN.test(prefix)) throw new Error(`not a benchmark key prefix: ${prefix}`);
    return this.deleteMatching(`${prefix}:*`);
  }

  /** Deletes the keys of rounds whose orchestrator no longer runs (a killed run). Returns the prefixes. */
  async dropLeftovers(): Promise<string[]> {
    const redis = await connect(this.url);
    const prefixes = new Set<string>();
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", "bench_*", "COUNT", 1000);
        cursor = next;
        for (const key of keys) {
          const prefix = key.split(":")[0] ?? "";
          const pid = Number(PREFIX_PATTERN.exec(prefix)?.[1] ?? NaN);
          if (Number.isInteger(pid) && pid !== process.pid && !processExists(pid)) prefixes.add(prefix);
        }
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
    for (const prefix of prefixes) await this.dropPrefix(prefix);
    return [...prefixes];
  }

  private async deleteMatching(pattern: string): Promise<number> {
    const redis = await connect(this.url);
    let deleted = 0;
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        if (keys.length) deleted += await redis.unlink(...keys);
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
    return deleted;
  }
}
