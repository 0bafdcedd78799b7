import type { StorageDriver } from "../store/driver.ts";
import type { Logger } from "../tasks/logger.ts";

export interface ElectorOptions {
  readonly driver: StorageDriver;
  readonly logger: Logger;
  /** This node's id. */
  readonly holderId: string;
  /** The duty led. Default "maintenance". */
  readonly name?: string;
  /** A leader's term, ms; a dead leader is replaced within it. Default 15,000. */
  readonly ttlMs?: number;
  /** How often to take or renew leadership, ms. Default a third of the term. */
  readonly intervalMs?: number;
  readonly onChange?: (isLeader: boolean) => void;
}

/**
 * Keeps one node the leader of node-wide duties (the rescuer) among all nodes sharing a store.
 * The leader renews its term well before it ends; when it dies, the first node to try after the
 * term has passed takes over. The database clock decides.
 */
export class Elector {
  private timer: NodeJS.Timeout | null = null;
  private leader = false;
  private busy: Promise<boolean> | null = null;
  private readonly name: string;
  private readonly ttlMs: number;

  constructor(private readonly options: ElectorOptions) {
    this.name = options.name ?? "maintenance";
    this.ttlMs = options.ttlMs ?? 15_000;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce().catch(() => undefined), this.options.intervalMs ?? Math.floor(this.ttlMs / 3));
    this.timer.unref();
    void this.runOnce().catch(() => undefined);
  }

  /** One attempt to take or renew leadership; resolves to whether this node leads. */
  async runOnce(): Promise<boolean> {
    if (this.busy) return this.busy;
    this.busy = (async () => {
      let now: boolean;
      try {
        now = await this.options.driver.leaderAttemptElect({ name: this.name, holderId: this.options.holderId, ttlMs: this.ttlMs });
      } catch (error) {
        // Unsure whether the term was renewed: stop leading rather than risk two leaders.
        this.options.logger.error({ err: error }, "leader election failed; not leading until it succeeds");
        now = false;
      }
      if (now !== this.leader) {
        this.leader = now;
        this.options.logger.info({ duty: this.name, holder: this.options.holderId }, now ? "became the leader" : "is no longer the leader");
        this.options.onChange?.(now);
      }
      return now;
    })();
    try {
      return await this.busy;
    } finally {
      this.busy = null;
    }
  }

  /** Stops trying and hands leadership over at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.busy?.catch(() => undefined);
    if (this.leader) {
      this.leader = false;
      await this.options.driver.leaderResign({ name: this.name, holderId: this.options.holderId }).catch(() => undefined);
    }
  }
}
