import { sql } from "../platform/db/kysely-module.ts";
import type { Platform } from "../platform/platform.ts";

export type ChangeTopic = "tasks" | "activities";

/**
 * Tells connected pages that tasks or Activities changed, from the database itself: tasks may be
 * run by other processes and other nodes, so in-process events would miss their changes. One poll
 * per server (two indexed reads), shared by every subscriber, and none while nobody listens.
 */
export class ChangeFeed {
  private readonly listeners = new Set<(topic: ChangeTopic) => void>();
  private readonly marks = new Map<ChangeTopic, string>();
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly platform: Platform,
    private readonly intervalMs = 500,
  ) {}

  subscribe(listener: (topic: ChangeTopic) => void): () => void {
    this.listeners.add(listener);
    // While a poll is under way, the next is scheduled when it ends: never two at once.
    if (this.listeners.size === 1 && !this.polling) this.schedule(0);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        // Marks taken while nobody listened would be stale; the next subscriber starts afresh.
        this.marks.clear();
      }
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.listeners.clear();
    await this.polling;
  }

  private schedule(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (this.listeners.size > 0) this.schedule(this.intervalMs);
        else this.marks.clear(); // everyone left during the poll: what it read is stale too
      });
    }, ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    try {
      const [tasks, activities] = await Promise.all([this.platform.runtime.driver.taskChangeMark(), this.activityMark()]);
      this.compare("tasks", tasks);
      this.compare("activities", activities);
    } catch (error) {
      if (!this.stopped) this.platform.runtime.logger.warn({ err: error }, "the change feed could not read the database; retrying");
    }
  }

  /**
   * The newest ModifiedOn and CreatedOn of Activity (both indexed, so each is one lookup), how many
   * records carry each (a save in the same millisecond as the newest moves no newest), and how many
   * Activities were deleted (one row). Saves stamp inside their transaction: on SQLite, which
   * commits one at a time, the stamps follow the commits. On PostgreSQL a save that commits after
   * a later-stamped one (it waited for a lock) moves no newest: the server's counts of the table's
   * inserted, updated and deleted rows are read too, and move once its statistics have the save
   * (when the saving session ends its transaction, or within a second of it).
   */
  private async activityMark(): Promise<string> {
    const ref = sql.ref;
    const table = sql.table("Activity");
    const newest = (column: string) =>
      sql`(SELECT count(*) FROM ${table} WHERE ${ref(column)} = (SELECT max(${ref(column)}) FROM ${table}))`;
    const counted =
      this.platform.appConnection.dialect === "postgres"
        ? sql`(SELECT pg_stat_get_tuples_inserted(o) + pg_stat_get_tuples_updated(o) + pg_stat_get_tuples_deleted(o) FROM (SELECT '"Activity"'::regclass AS o) r)`
        : sql`NULL`;
    const { rows } = await sql<{ m: unknown; c: unknown; mn: unknown; cn: unknown; d: unknown; s: unknown }>`
      SELECT (SELECT max(${ref("ModifiedOn")}) FROM ${table}) AS m,
             (SELECT max(${ref("CreatedOn")}) FROM ${table}) AS c,
             ${newest("ModifiedOn")} AS mn,
             ${newest("CreatedOn")} AS cn,
             (SELECT ${ref("Deletions")} FROM ${sql.table("SysEntityDeletion")} WHERE ${ref("SchemaName")} = 'Activity') AS d,
             ${counted} AS s`.execute(this.platform.db);
    const row = rows[0];
    const text = (v: unknown): string => (v instanceof Date ? String(v.getTime()) : String(v ?? ""));
    return [row?.m, row?.c, row?.mn, row?.cn, row?.d, row?.s].map(text).join(":");
  }

  private compare(topic: ChangeTopic, mark: string): void {
    const previous = this.marks.get(topic);
    this.marks.set(topic, mark);
    if (previous === undefined || previous === mark) return;
    for (const listener of [...this.listeners]) listener(topic);
  }
}
