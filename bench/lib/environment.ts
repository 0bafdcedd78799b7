import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { fileURLToPath } from "node:url";

/** underway's durability in every round: its default (bench/lib/runtime.ts). */
const DURABILITY = "normal";

/** The packages whose installed versions the report names. */
const PACKAGES = ["graphile-worker", "pg-boss", "bullmq", "ioredis", "pg", "msgpackr"] as const;

export interface Environment {
  readonly date: string;
  readonly node: string;
  readonly betterSqlite3: string;
  readonly sqlite: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly tmpdir: string;
  readonly durability: string;
  /** underway's own version (package.json), and the installed versions of the peers and drivers. */
  readonly underway: string;
  readonly packages: Readonly<Record<string, string>>;
  /** Commit of the working tree, and whether src/ differs from it. */
  readonly commit: string;
  readonly srcModified: boolean | null;
  /** 1-minute load average when the run began: other work on the machine skews the figures. */
  readonly loadAtStart: number;
}

function git(args: string[]): string | null {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** The version in node_modules/<name>/package.json (read as a file: not every package exports it). */
function installedVersion(name: string): string {
  try {
    const file = fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url));
    return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version ?? "?";
  } catch {
    return "not installed";
  }
}

export function describeEnvironment(): Environment {
  const require = createRequire(import.meta.url);
  const { version: betterSqlite3 } = require("better-sqlite3/package.json") as { version: string };
  const db = new Database(":memory:");
  const { v: sqlite } = db.prepare("SELECT sqlite_version() AS v").get() as { v: string };
  db.close();
  const cpus = os.cpus();
  const status = git(["status", "--porcelain", "--", "src"]);
  return {
    date: new Date().toISOString(),
    node: process.version,
    betterSqlite3,
    sqlite,
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    tmpdir: os.tmpdir(),
    durability: DURABILITY,
    underway: installedVersionOfRoot(),
    packages: Object.fromEntries(PACKAGES.map((name) => [name, installedVersion(name)])),
    commit: git(["rev-parse", "--short", "HEAD"]) ?? "unknown",
    srcModified: status === null ? null : status.length > 0,
    loadAtStart: os.loadavg()[0] ?? 0,
  };
}

function installedVersionOfRoot(): string {
  const file = fileURLToPath(new URL("../../package.json", import.meta.url));
  return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version ?? "?";
}
