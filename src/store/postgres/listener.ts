/**
 * LISTEN on the store's channel, on a connection of its own (a pooled one would be handed to
 * other work). When that connection ends or fails, it connects again with backoff; since
 * notifications sent meanwhile are lost, it wakes once after every reconnection so workers look.
 */
import pg from "pg";

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
}

export class Listener {
  private client: pg.Client | null = null;
  private listening = false;
  private attempt: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private connectedBefore = false;
  private stopped = false;

  constructor(private readonly options: ListenerOptions) {}

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
    await this.attempt?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    this.listening = false;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.options.client);
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
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
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
