import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { StorageDriver } from "../../store/driver.ts";
import type { PlatformTables } from "../db/tables.ts";
import { toBoolean, toDate } from "../db/values.ts";
import { hashPassword, verifyPassword } from "./passwords.ts";
import { SignInCounter, type SignInLimits } from "./sign-in-limits.ts";
import type { PlatformUser, Users } from "./users.ts";
import { loginKey } from "./login-key.ts";

export interface Session {
  readonly user: PlatformUser;
  /** Sent back by the browser in a header on every cookie-authenticated write. */
  readonly csrfToken: string;
  readonly expiresAt: Date;
}

const tokenId = (token: string): string => createHash("sha256").update(token).digest("hex");

/** A hash to verify against when the login does not exist, so both cases take the same time. */
let decoy: Promise<string> | null = null;

/** Signed-in sessions: a random bearer token whose hash is stored, expiring after `ttlMs`. */
export class Sessions {
  private readonly ttlMs: number;
  private readonly failures: SignInCounter;

  constructor(
    private readonly store: StorageDriver,
    private readonly db: Kysely<PlatformTables>,
    private readonly users: Users,
    options: { ttlMs?: number; signInLimits?: SignInLimits } = {},
  ) {
    const ttlMs = options.ttlMs ?? 8 * 60 * 60 * 1000;
    if (typeof ttlMs !== "number" || !Number.isInteger(ttlMs) || ttlMs < 1000 || ttlMs > 366 * 24 * 60 * 60 * 1000) {
      throw new RangeError(`sessionTtlMs must be an integer from 1,000 ms to 366 days, got ${String(ttlMs)}`);
    }
    this.ttlMs = ttlMs;
    // Made now, not at the first unknown login, which would otherwise take two hashes' time.
    decoy ??= hashPassword("decoy password");
    this.failures = new SignInCounter(db, () => store.clockNow(), options.signInLimits);
  }

  /**
   * A new session for a correct login and password of an active user; null otherwise. `address`
   * is the client's (the web application passes the request's): failed sign-ins are counted per
   * login and per address, and past the limits the attempt throws SignInThrottledError before
   * its password is checked.
   */
  async signIn(login: unknown, password: unknown, address?: string): Promise<(Session & { token: string }) | null> {
    if (typeof login !== "string" || typeof password !== "string" || login.length > 250 || password.length > 1024) return null;
    // Counted under the login's key: another case or normal form of one login is one login (and
    // does not get a count of its own).
    const counted = loginKey(login);
    await this.failures.attempt(counted, address);
    const session = await this.checkedSignIn(login, password);
    if (session) await this.failures.succeeded(counted, address);
    return session;
  }

  private async checkedSignIn(login: string, password: string): Promise<(Session & { token: string }) | null> {
    const found = await this.users.passwordHashOf(login);
    if (!found) {
      await verifyPassword(password, await (decoy ??= hashPassword("decoy password")));
      return null;
    }
    if (!(await verifyPassword(password, found.hash))) return null;
    const token = randomBytes(32).toString("base64url");
    const csrfToken = randomBytes(24).toString("base64url");
    // The password was checked outside any transaction (it takes a while on purpose): a password
    // change or a deactivation in the meantime ended the user's sessions, and must end this one
    // too, so the session is stored only if the hash and the user are still the ones checked.
    const signedIn = await this.store.transaction(async () => {
      const now = await this.store.clockNow();
      // On PostgreSQL the row lock orders this against a concurrent password change or deactivation
      // (SQLite runs one write transaction at a time).
      const query = this.db.selectFrom("SysAdminUnit").select(["PasswordHash", "Active"]).where("Id", "=", found.id);
      const current = await (this.store.dialect === "postgres" ? query.forUpdate() : query).executeTakeFirst();
      if (!current || current.PasswordHash !== found.hash || !toBoolean(current.Active)) return null;
      const expiresAt = new Date(now + this.ttlMs);
      // Expired sessions are removed here, so that the table does not keep every sign-in ever made.
      await this.db.deleteFrom("SysSession").where("ExpiresOn", "<=", new Date(now)).execute();
      await this.db
        .insertInto("SysSession")
        .values({ Id: tokenId(token), UserId: found.id, CsrfToken: csrfToken, CreatedOn: new Date(now), ExpiresOn: expiresAt })
        .execute();
      return { expiresAt };
    });
    if (!signedIn) return null;
    const user = await this.users.getById(found.id);
    if (!user || !user.active) return null;
    const { expiresAt } = signedIn;
    return { token, csrfToken, expiresAt, user };
  }

  /** The session of a token: null when unknown, expired, or its user is no longer active. */
  async authenticate(token: unknown): Promise<Session | null> {
    if (typeof token !== "string" || token.length < 20 || token.length > 200) return null;
    const id = tokenId(token);
    const row = await this.db.selectFrom("SysSession").select(["UserId", "CsrfToken", "ExpiresOn"]).where("Id", "=", id).executeTakeFirst();
    if (!row) return null;
    const expiresAt = toDate(row.ExpiresOn);
    if (!expiresAt || expiresAt.getTime() <= (await this.store.clockNow())) {
      await this.db.deleteFrom("SysSession").where("Id", "=", id).execute();
      return null;
    }
    const user = await this.users.getById(row.UserId);
    if (!user || !user.active) return null;
    return { user, csrfToken: row.CsrfToken, expiresAt };
  }

  async signOut(token: unknown): Promise<void> {
    if (typeof token !== "string") return;
    await this.db.deleteFrom("SysSession").where("Id", "=", tokenId(token)).execute();
  }
}
