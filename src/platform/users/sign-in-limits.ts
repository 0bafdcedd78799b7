import type { Kysely } from "kysely";
import { sql } from "../db/kysely-module.ts";
import type { PlatformTables } from "../db/tables.ts";
import { toDate } from "../db/values.ts";
import { checkKnownKeys } from "../../tasks/known-keys.ts";

/** How many sign-ins may fail, per login and per client address, within one window. */
export interface SignInLimits {
  /** Failed sign-ins to one login within a window before it is refused until the window ends. Default 10. */
  readonly perLogin?: number;
  /** Failed sign-ins from one client address within a window (any login). Default 100. */
  readonly perAddress?: number;
  /** The window, ms, counted from its first failure. Default 15 minutes. */
  readonly windowMs?: number;
}

const DEFAULTS = { perLogin: 10, perAddress: 100, windowMs: 15 * 60 * 1000 } as const;

/** Refused before the password is looked at: too many sign-ins failed for this login or from this address. */
export class SignInThrottledError extends Error {
  override readonly name = "SignInThrottledError";
  constructor(
    /** When the window that refused the sign-in ends, ms from now (at least 1,000). */
    readonly retryAfterMs: number,
  ) {
    const seconds = Math.ceil(retryAfterMs / 1000);
    super(`too many failed sign-ins: try again in ${seconds < 120 ? `${seconds} s` : `${Math.ceil(seconds / 60)} min`}`);
  }
}

function checkLimit(value: unknown, what: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`signInLimits.${what} must be an integer from 1 to ${max.toLocaleString("en-US")}, got ${String(value)}`);
  }
  return value;
}

/** The limits with their defaults, checked. */
export function signInLimitsOf(limits: SignInLimits | undefined): Required<SignInLimits> {
  if (limits !== undefined && (typeof limits !== "object" || limits === null)) throw new TypeError("signInLimits must be an object");
  if (limits) checkKnownKeys(limits, ["perLogin", "perAddress", "windowMs"] satisfies (keyof SignInLimits)[], "signInLimits");
  return {
    perLogin: checkLimit(limits?.perLogin, "perLogin", 1_000_000) ?? DEFAULTS.perLogin,
    perAddress: checkLimit(limits?.perAddress, "perAddress", 1_000_000) ?? DEFAULTS.perAddress,
    windowMs: checkLimit(limits?.windowMs, "windowMs", 7 * 24 * 60 * 60 * 1000) ?? DEFAULTS.windowMs,
  };
}

/**
 * Counts failed sign-ins in the platform database, so that every node serving the same database
 * shares the counts. Each attempt is counted before its password is checked (a burst of parallel
 * guesses cannot all pass a check made before any of them failed); a successful one takes its
 * count back and clears its login's count.
 */
export class SignInCounter {
  private readonly limits: Required<SignInLimits>;

  constructor(
    private readonly db: Kysely<PlatformTables>,
    private readonly now: () => Promise<number>,
    limits: SignInLimits | undefined,
  ) {
    this.limits = signInLimitsOf(limits);
  }

  /**
   * Counts an attempt; throws SignInThrottledError when it is one too many. The address is counted
   * and checked first: an address over its limit is refused without touching the login's count,
   * so that one client cannot lock out any number of accounts (nor add a row per login it names)
   * once its own budget is spent.
   */
  async attempt(login: string, address: string | undefined): Promise<void> {
    const now = await this.now();
    const cutoff = new Date(now - this.limits.windowMs);
    // Windows that ended start afresh (and do not pile up: one indexed delete).
    await this.db.deleteFrom("SysSignInThrottle").where("WindowStart", "<=", cutoff).execute();
    if (address) await this.count(`address:${address}`, this.limits.perAddress, now);
    await this.count(`login:${login}`, this.limits.perLogin, now);
  }

  private async count(key: string, limit: number, now: number): Promise<void> {
    const row = await this.db
      .insertInto("SysSignInThrottle")
      .values({ Key: key, Failures: 1, WindowStart: new Date(now) })
      .onConflict((conflict) => conflict.column("Key").doUpdateSet({ Failures: sql<number>`${sql.ref("SysSignInThrottle.Failures")} + 1` }))
      .returning(["Failures", "WindowStart"])
      .executeTakeFirstOrThrow();
    if (Number(row.Failures) > limit) {
      const ends = (toDate(row.WindowStart)?.getTime() ?? now) + this.limits.windowMs;
      throw new SignInThrottledError(Math.max(ends - now, 1000));
    }
  }

  /** The attempt succeeded: its login starts afresh, and its address's count drops by this attempt. */
  async succeeded(login: string, address: string | undefined): Promise<void> {
    await this.db.deleteFrom("SysSignInThrottle").where("Key", "=", `login:${login}`).execute();
    if (!address) return;
    await this.db
      .updateTable("SysSignInThrottle")
      .set({ Failures: sql<number>`${sql.ref("Failures")} - 1` })
      .where("Key", "=", `address:${address}`)
      .where("Failures", ">", 0)
      .execute();
  }
}
