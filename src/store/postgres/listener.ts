/**
 * LISTEN on the store's channel, on a connection of its own (a pooled one would be handed to
 * other work). When that connection ends or fails, it connects again with backoff; since
 * notifications sent meanwhile are lost, it wakes once after every reconnection so workers look.
 */
import type pg from "pg";
import { pgModule } from "./connection.ts";

export interface ListenerOptions {
  readonly client: pg.ClientConfig;
  /** The channel's name, as pg_notify is given it. */
  readonly channel: string;
  /** The channel, quoted, for LISTEN. */
  readonly quotedChannel: string;
  readonly wake: () => void;
  /** First reconnection delay, ms; doubles up to maxDelayMs. */
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  /**
   * How often the connection is checked with a query, ms (default 15,000). A connection that
   * stays silent (a half-open socket: the server or a network device dropped it without telling)
   * is replaced when a check gets no answer within `healthTimeoutMs` (default 5,000).
   */
  readonly healthCheckMs?: number;
  readonly healthTimeoutMs?: number;
}

export class Listener {
  private client: pg.Client | null = null;
  private listening = false;
  private attempt: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private connectedBefore = false;
  private stopped = false;
  private healthTimer: NodeJS.Timeout | null = null;
  private lose: (() => void) | null = null;

  constructor(private readonly options: ListenerOptions) {}

  /** Checks that the connection still answers; replaces it when it does not. */
  async checkHealth(): Promise<boolean> {
    const client = this.client;
    if (!client || !this.listening) return false;
    const lose = this.lose;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.options.healthTimeoutMs ?? 5_000);
    });
    try {
      const result = await Promise.race([client.query("SELECT 1").then(() => "ok" as const), timeout]);
      if (result === "ok") return true;
    } catch {
      // the connection failed: replaced below
    } finally {
      clearTimeout(timer);
    }
    if (this.client === client) lose?.();
    return false;
  }

  /** Resolves once listening: at once if so, else after a connection attempt made now. */
  ensure(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("the listener is stopped"));
    if (this.listening) return Promise.resolve();
    if (this.attempt) return this.attempt;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.attempt = this.connect().finally(() => {
      this.attempt = null;
    });
    return this.attempt;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = null;
    await this.attempt?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    this.listening = false;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new (pgModule().Client)(this.options.client);
    this.client = client;
    let lost = false;
    const onLost = (): void => {
      if (lost) return;
      lost = true;
      if (this.client === client) {
        this.client = null;
        this.listening = false;
      }
      client.removeAllListeners("notification");
      // end() waits for the server, which a half-open socket never answers: do not wait for it.
      client.end().catch(() => undefined);
      (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
      this.scheduleReconnect();
    };
    this.lose = onLost;
    // Without an error handler, a dropped connection would crash the process.
    client.on("error", onLost);
    client.on("end", onLost);
    client.on("notification", (message) => {
      if (message.channel === this.options.channel) this.wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.options.quotedChannel}`);
    } catch (error) {
      this.failures++;
      onLost();
      throw error;
    }
    if (this.stopped || lost) return;
    this.listening = true;
    if (!this.healthTimer) {
      this.healthTimer = setInterval(() => void this.checkHealth(), this.options.healthCheckMs ?? 15_000);
      this.healthTimer.unref();
    }
    const missedSome = this.connectedBefore || this.failures > 0;
    this.connectedBefore = true;
    this.failures = 0;
    if (missedSome) this.wake();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const min = this.options.minDelayMs ?? 100;
    const max = this.options.maxDelayMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.failures, 20)) * (0.5 + Math.random() / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.ensure().catch(() => undefined); // failed again: connect() has scheduled the next try
    }, delay);
  }

  private wake(): void {
    try {
      this.options.wake();
    } catch {
      // A listener's bug must not break the connection's event handling.
    }
  }
}
