/** The benchmark's results: grouping rounds into figures, and the markdown report. */
import type { Environment } from "./environment.ts";
import type { PostgresInfo } from "./postgres.ts";
import type { Measurement, RoundResult, Unit } from "./protocol.ts";
import { redisDurability, type RedisInfo } from "./redis.ts";
import { spread, type Spread } from "./stats.ts";
import { storeOf, SYSTEMS, type SystemId } from "./systems.ts";

/** One scenario as the table shows it. */
export interface ScenarioDef {
  /** Stable id, used by --only and --profile and in the JSON. */
  readonly id: string;
  /** The scenario's number in bench/README.md. */
  readonly number: string;
  readonly title: string;
  /** What one round handles, in words ("20,000 tasks"). */
  readonly size: string;
  /** The systems it runs on. */
  readonly systems: readonly SystemId[];
  /** "limits": a machine limit, in the table of its own. */
  readonly group: "compare" | "limits";
}

export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly unit: Unit;
  readonly values: readonly number[];
  readonly spread: Spread;
  /** Rounds that stopped at the time limit, with how far they got. */
  readonly partial: readonly string[];
}

/** One (scenario, system) pair: a cell group of the table. */
export interface Cell {
  readonly system: SystemId;
  readonly rounds: readonly RoundResult[];
  /** Rounds whose child process failed, with the error. */
  readonly failures: readonly string[];
  /** Wall time of each round's child process, ms (start-up included). */
  readonly childWallMs: readonly number[];
  readonly figures: readonly Figure[];
  /** Why the scenario does not run on this build (n/a), if so. */
  readonly unavailable: string | null;
  /** Problems measured through (a task that ran twice, one lost), from every round. */
  readonly warnings: readonly string[];
}

export interface ScenarioSummary {
  readonly def: ScenarioDef;
  readonly cells: readonly Cell[];
}

export interface Report {
  readonly mode: "full" | "quick";
  readonly rounds: number;
  /** The command line that produced it. */
  readonly command: string;
  readonly environment: Environment;
  /** The systems run, in column order. */
  readonly systems: readonly SystemId[];
  readonly postgres: PostgresInfo | null;
  readonly redis: RedisInfo | null;
  readonly loadAtEnd: number;
  readonly wallMs: number;
  readonly scenarios: readonly ScenarioSummary[];
}

/** Groups a (scenario, system)'s rounds by measurement key, in the order the first round gave them. */
export function summarizeCell(system: SystemId, rounds: readonly RoundResult[], failures: readonly string[], childWallMs: readonly number[]): Cell {
  const byKey = new Map<string, { first: Measurement; values: number[]; partial: string[] }>();
  for (const round of rounds) {
    for (const m of round.measurements) {
      const entry = byKey.get(m.key) ?? { first: m, values: [], partial: [] };
      entry.values.push(m.value);
      if (m.partial) entry.partial.push(m.partial);
      byKey.set(m.key, entry);
    }
  }
  const figures = [...byKey.values()].map(({ first, values, partial }) => ({
    key: first.key,
    label: first.label,
    unit: first.unit,
    values,
    spread: spread(values),
    partial,
  }));
  const unavailable = rounds.find((r) => r.unavailable)?.unavailable ?? null;
  const warnings = [...new Set(rounds.flatMap((r) => r.warnings ?? []))];
  return { system, rounds, failures, childWallMs, figures, unavailable, warnings };
}

function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === "ms" || unit === "µs") return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US");
  if (unit === "MB") return Math.round(value).toLocaleString("en-US");
  if (unit === "%") return `${value >= 0 ? "+" : ""}${value.toFixed(1)}%`;
  return Math.round(value).toLocaleString("en-US");
}

function formatFigure(f: Figure, withRange: boolean): string {
  const median = formatValue(f.spread.median, f.unit);
  if (!withRange || f.values.length < 2) return median;
  return `${median} (${formatValue(f.spread.min, f.unit)}–${formatValue(f.spread.max, f.unit)})`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

function cellOf(report: Report, scenario: string, system: SystemId): Cell | undefined {
  return report.scenarios.find((s) => s.def.id === scenario)?.cells.find((c) => c.system === system);
}

function figureOf(report: Report, scenario: string, system: SystemId, key: string): Figure | undefined {
  return cellOf(report, scenario, system)?.figures.find((f) => f.key === key);
}

/** What an acknowledged enqueue survives, per system, on this run's servers. */
export function durabilityOf(system: SystemId, report: Pick<Report, "postgres" | "redis" | "environment">): string {
  const service = SYSTEMS[system].service;
  if (service === "sqlite") {
    return `WAL, synchronous=NORMAL (durability "${report.environment.durability}", the default): no fsync per commit; a process crash loses nothing acknowledged, a power loss may lose the last commits`;
  }
  if (service === "postgres") {
    const pg = report.postgres;
    if (!pg) return "PostgreSQL (settings not read)";
    if (pg.fsync !== "on") return `fsync=${pg.fsync}: nothing is flushed to disk (a crash of the server may lose anything)`;
    if (pg.synchronousCommit === "off") return "synchronous_commit=off: commits are flushed in the background (a server crash may lose the last ones)";
    return `fsync (WAL flush) per commit (synchronous_commit=${pg.synchronousCommit}): an acknowledged enqueue survives a power loss`;
  }
  if (service === "redis") return report.redis ? redisDurability(report.redis) : "Redis (settings not read)";
  return "as the store it measures";
}

function versionOf(system: SystemId, env: Environment): string {
  const library = SYSTEMS[system].library;
  if (system === "machine") return `better-sqlite3 ${env.betterSqlite3}, pg ${env.packages.pg ?? "?"}`;
  if (library === null) return `underway ${env.underway} (working tree)`;
  const driver = library === "bullmq" ? `, ioredis ${env.packages.ioredis ?? "?"}` : `, pg ${env.packages.pg ?? "?"}`;
  return `${library} ${env.packages[library] ?? "?"}${driver}`;
}

/** Marks: † stopped at the time limit in some round; ⚠ a warning (ran twice, lost, ...). */
function cellText(cell: Cell | undefined, f: Figure | undefined, withRange: boolean, notes: Notes): string {
  if (!cell) return "–";
  if (cell.unavailable) {
    const short = /^isolation not available/.test(cell.unavailable) ? "isolation not available" : "not available";
    return `n/a (${short}) ${notes.mark("", cell.unavailable, "note ")}`;
  }
  if (cell.failures.length && cell.rounds.length === 0) return `failed ${notes.mark("", cell.failures[0] ?? "", "note ")}`;
  if (!f) return "–";
  let text = formatFigure(f, withRange);
  if (f.partial.length) text += ` ${notes.mark("", `stopped at the time limit: ${f.partial.join("; ")}`, "†")}`;
  if (cell.warnings.length) text += ` ${notes.mark("", cell.warnings.join("; "), "⚠")}`;
  if (cell.failures.length) text += ` (${cell.failures.length} round(s) failed, ${notes.mark("", cell.failures[0] ?? "", "note ")})`;
  return text;
}

/** Numbered footnotes, so that the table cells stay short. */
class Notes {
  readonly list: string[] = [];
  mark(prefix: string, text: string, symbol: string): string {
    let index = this.list.indexOf(text);
    if (index < 0) index = this.list.push(text) - 1;
    return `${prefix}${prefix ? " " : ""}${symbol}${index + 1}`;
  }
}

/** The markdown the benchmark prints. */
export function renderMarkdown(report: Report): string {
  const env = report.environment;
  const lines: string[] = [];
  const withRange = report.rounds > 1;
  const roundsText = withRange ? `${report.rounds} rounds, median (min–max)` : "1 round";
  lines.push(`## underway benchmark, ${report.mode} mode (${roundsText})`, "");
  lines.push(
    `- Command: \`${report.command}\`; wall time ${formatDuration(report.wallMs)}`,
    `- Date: ${env.date}; commit ${env.commit}${env.srcModified ? " with uncommitted changes in src/" : ""}`,
    `- Machine: ${env.cpu}, ${env.cores} cores, ${env.memoryGiB} GiB, ${env.os}; load average ${env.loadAtStart.toFixed(2)} at start, ${report.loadAtEnd.toFixed(2)} at end`,
    `- Node ${env.node}; every round in fresh processes; systems interleaved within each round; no-op tasks; logging off`,
  );
  if (report.postgres) {
    const pg = report.postgres;
    lines.push(
      `- PostgreSQL ${pg.server} at ${pg.url} (loopback)${pg.startedByBenchmark ? ", started by the benchmark" : ""}: synchronous_commit=${pg.synchronousCommit}, fsync=${pg.fsync} (wal_sync_method ${pg.walSyncMethod}), shared_buffers=${pg.sharedBuffers}, max_connections=${pg.maxConnections}; a fresh schema per round and system, dropped afterwards`,
    );
  }
  if (report.redis) {
    const r = report.redis;
    lines.push(
      `- Redis ${r.version} at ${r.url} (loopback)${r.startedByBenchmark ? ", started by the benchmark" : ""}: save "${r.save}", appendonly ${r.appendonly}; a fresh key prefix per round, deleted afterwards`,
    );
  }
  if (report.systems.includes("underway-sqlite") || report.systems.includes("machine")) {
    lines.push(`- SQLite ${env.sqlite} (better-sqlite3 ${env.betterSqlite3}): a fresh file per round in ${env.tmpdir}`);
  }

  lines.push("", "### Systems", "", "| System | Version | Store | Durability of an acknowledged enqueue | Settings |", "|---|---|---|---|---|");
  for (const system of report.systems) {
    lines.push(`| ${SYSTEMS[system].label} | ${versionOf(system, env)} | ${storeOf(system)} | ${durabilityOf(system, report)} | ${SYSTEMS[system].settings} |`);
  }

  const notes = new Notes();
  const compare = report.scenarios.filter((s) => s.def.group === "compare");
  const columns = report.systems.filter((system) => system !== "machine" && compare.some((s) => s.def.systems.includes(system)));
  if (compare.length && columns.length) {
    lines.push("", "### Results", "");
    lines.push(`| # | Scenario | Size | Metric | ${columns.map((c) => SYSTEMS[c].label).join(" | ")} |`);
    lines.push(`|---|---|---|---|${columns.map(() => "---:").join("|")}|`);
    for (const s of compare) {
      // Metrics in the order the first system with results gave them.
      const keys: { key: string; label: string; unit: Unit }[] = [];
      for (const cell of s.cells) for (const f of cell.figures) if (!keys.some((k) => k.key === f.key)) keys.push(f);
      if (keys.length === 0) keys.push({ key: "", label: "–", unit: "count" });
      keys.forEach((k, i) => {
        const cells = columns.map((system) => {
          const cell = s.cells.find((c) => c.system === system);
          return cellText(cell, cell?.figures.find((f) => f.key === k.key), withRange, notes);
        });
        lines.push(`| ${i === 0 ? s.def.number : ""} | ${i === 0 ? s.def.title : ""} | ${i === 0 ? s.def.size : ""} | ${k.key ? `${k.label}, ${k.unit}` : "–"} | ${cells.join(" | ")} |`);
      });
    }
  }

  const limits = report.scenarios.filter((s) => s.def.group === "limits");
  if (limits.length) {
    lines.push("", "### The machine's limits (no queue library)", "", "| # | Limit | Size | Metric | Result |", "|---|---|---|---|---:|");
    for (const s of limits) {
      const cell = s.cells[0];
      (cell?.figures.length ? cell.figures : [undefined]).forEach((f, i) => {
        lines.push(`| ${i === 0 ? s.def.number : ""} | ${i === 0 ? s.def.title : ""} | ${i === 0 ? s.def.size : ""} | ${f ? `${f.label}, ${f.unit}` : "–"} | ${cellText(cell, f, withRange, notes)} |`);
      });
    }
  }

  const closeness = closenessRows(report);
  if (closeness.length) {
    lines.push(
      "",
      "### How close to the machine's limits (medians)",
      "",
      "| System | Enqueue one at a time ÷ raw INSERT, one commit each | Fastest drain ÷ raw claim 500 + decode + mark done |",
      "|---|---:|---:|",
      ...closeness,
    );
  }

  if (notes.list.length) {
    lines.push("", "Notes: † stopped at its time limit (the figure is the rate of what it handled by then); ⚠ a problem measured through (a task run twice, lost, or left pending); n/a not available on this build.", "");
    notes.list.forEach((text, i) => lines.push(`${i + 1}. ${text}`));
  }

  lines.push("", "<details><summary>Checks (every round)</summary>", "");
  for (const s of report.scenarios) {
    for (const cell of s.cells) {
      // Clause by clause, so that what every round checked is said once.
      const checks = [...new Set(cell.rounds.flatMap((r) => r.checks.flatMap((c) => c.split("; "))))];
      const text = cell.unavailable ? `n/a: ${cell.unavailable}` : checks.join("; ") || (cell.failures.length ? "failed" : "none");
      lines.push(`- ${s.def.number} ${s.def.id}, ${SYSTEMS[cell.system].label}: ${text}`);
    }
  }
  lines.push("", "</details>");
  return lines.join("\n");
}

function ratio(a: Figure | undefined, b: Figure | undefined): string {
  return a && b && b.spread.median > 0 ? `${((100 * a.spread.median) / b.spread.median).toFixed(0)}%` : "–";
}

/** Each system's enqueue and fastest drain as a share of the raw figures of its own store. */
function closenessRows(report: Report): string[] {
  const rows: string[] = [];
  for (const system of report.systems) {
    const service = SYSTEMS[system].service;
    if (system === "machine" || (service !== "sqlite" && service !== "postgres")) continue;
    const limit = service === "sqlite" ? "limit-sqlite" : "limit-postgres";
    if (!cellOf(report, limit, "machine")) continue;
    const single = figureOf(report, "enqueue-single", system, "rate");
    const drains = report.scenarios
      .filter((s) => s.def.id.startsWith("drain-"))
      .map((s) => ({ id: s.def.id, f: s.cells.find((c) => c.system === system)?.figures.find((f) => f.key === "rate") }))
      .filter((x): x is { id: string; f: Figure } => x.f !== undefined)
      .sort((a, b) => b.f.spread.median - a.f.spread.median);
    const best = drains[0];
    if (!single && !best) continue;
    const insertMinimal = figureOf(report, limit, "machine", "insert-minimal");
    const claimMinimal = figureOf(report, limit, "machine", "claim-minimal");
    const ownSchema = system.startsWith("underway-");
    const insertSchema = ownSchema ? figureOf(report, limit, "machine", "insert-schema") : undefined;
    const claimSchema = ownSchema ? figureOf(report, limit, "machine", "claim-schema") : undefined;
    const enqueueText = `${ratio(single, insertMinimal)} of the minimal table${insertSchema ? `, ${ratio(single, insertSchema)} of underway's schema` : ""}`;
    const drainText = best
      ? `${ratio(best.f, claimMinimal)} of the minimal table${claimSchema ? `, ${ratio(best.f, claimSchema)} of underway's schema` : ""} (${best.id})`
      : "–";
    rows.push(`| ${SYSTEMS[system].label} | ${enqueueText} | ${drainText} |`);
  }
  return rows;
}
