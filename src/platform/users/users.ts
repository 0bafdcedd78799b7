import { randomBytes, randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { StorageDriver } from "../../store/driver.ts";
import { SystemIds } from "../constants.ts";
import type { PlatformTables } from "../db/tables.ts";
import { isUniqueViolation, toBoolean } from "../db/values.ts";
import { assertCulture, assertTimeZone, hasControlCharacter } from "../../tasks/initiator.ts";
import { loginKey } from "./login-key.ts";
import { hashPassword } from "./passwords.ts";

/** A user (the platform's system administration unit) with its contact and roles. */
export interface PlatformUser {
  readonly id: string;
  /** The login. */
  readonly name: string;
  readonly contactId: string;
  readonly contactName: string;
  readonly culture: string;
  readonly timeZone: string;
  readonly active: boolean;
  readonly roleIds: readonly string[];
  readonly isAdmin: boolean;
}

export interface NewUser {
  readonly login: string;
  readonly password: string;
  /** The contact's name; default the login. */
  readonly contactName?: string;
  readonly culture?: string;
  readonly timeZone?: string;
  /** Adds the System administrators role. */
  readonly admin?: boolean;
}

/** A login or a contact's name: 1-250 characters after trimming, without control characters. */
function checkedName(value: unknown, what: string): string {
  if (typeof value !== "string") throw new TypeError(`${what} must be a string, got ${value === null ? "null" : typeof value}`);
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length > 250) throw new RangeError(`${what} must be 1-250 characters (not counting spaces at the ends)`);
  if (hasControlCharacter(trimmed)) throw new RangeError(`${what} ${JSON.stringify(trimmed)} holds a control character`);
  return trimmed;
}

/** The built-in administrator, who cannot be deleted or deactivated (it is the way back in). */
function assertNotSupervisor(id: string, action: string): void {
  if (id === SystemIds.SupervisorUserId) throw new Error(`the Supervisor cannot be ${action}: it is the built-in administrator`);
}

export class Users {
  constructor(
    private readonly store: StorageDriver,
    private readonly db: Kysely<PlatformTables>,
  ) {}

  async getById(id: string): Promise<PlatformUser | null> {
    return this.find("u.Id", id);
  }

  /**
   * The user of a login, in whichever case and Unicode normal form it is typed (logins are stored
   * NFC; see loginKey).
   */
  async getByLogin(login: string): Promise<PlatformUser | null> {
    const id = await this.idOfLogin(login);
    return id === null ? null : this.find("u.Id", id);
  }

  /**
   * The id of a login's user: the login as stored (NFC, or as typed for one stored before logins
   * were normalised), else the one user whose login differs only in case.
   */
  private async idOfLogin(login: string): Promise<string | null> {
    if (typeof login !== "string" || login.length === 0 || login.length > 250) return null;
    const by = async (column: "Name" | "NameKey", value: string) =>
      (await this.db.selectFrom("SysAdminUnit").select("Id").where(column, "=", value).executeTakeFirst())?.Id ?? null;
    const nfc = login.normalize("NFC");
    return (await by("Name", nfc)) ?? (nfc === login ? null : await by("Name", login)) ?? (await by("NameKey", loginKey(login)));
  }

  private async find(column: "u.Id", value: string): Promise<PlatformUser | null> {
    if (typeof value !== "string" || value.length === 0 || value.length > 250) return null;
    const row = await this.db
      .selectFrom("SysAdminUnit as u")
      .innerJoin("Contact as c", "c.Id", "u.ContactId")
      .select(["u.Id", "u.Name", "u.ContactId", "c.Name as ContactName", "u.Culture", "u.TimeZone", "u.Active"])
      .where(column, "=", value)
      .executeTakeFirst();
    if (!row) return null;
    const roles = await this.db.selectFrom("SysUserInRole").select("RoleId").where("UserId", "=", row.Id).execute();
    const roleIds = roles.map((r) => r.RoleId);
    return {
      id: row.Id,
      name: row.Name,
      contactId: row.ContactId,
      contactName: row.ContactName,
      culture: row.Culture,
      timeZone: row.TimeZone,
      active: toBoolean(row.Active),
      roleIds,
      isAdmin: roleIds.includes(SystemIds.SystemAdministratorsRoleId),
    };
  }

  /** Creates a user with a contact of its own, in the All employees role. */
  async create(user: NewUser): Promise<PlatformUser> {
    // One visible login, one account: "José" typed with a combining accent is the same login.
    const login = checkedName(user.login, "a login").normalize("NFC");
    const contactName = user.contactName === undefined ? login : checkedName(user.contactName, "a contact name");
    const timeZone = assertTimeZone(user.timeZone ?? "UTC");
    const culture = assertCulture(user.culture ?? "en-US");
    const passwordHash = await hashPassword(user.password);
    const id = randomUUID();
    const contactId = randomUUID();
    const now = new Date(await this.store.clockNow());
    const taken = (as?: string) =>
      new Error(`a user with the login ${JSON.stringify(login)} already exists${as && as !== login ? ` (as ${JSON.stringify(as)}: logins do not depend on case)` : ""}`);
    await this.store.transaction(async () => {
      const existing = await this.getByLogin(login);
      if (existing) throw taken(existing.name);
      await this.db
        .insertInto("Contact")
        .values({ Id: contactId, Name: contactName, CreatedOn: now, CreatedById: null, ModifiedOn: now, ModifiedById: null })
        .execute();
      await this.db
        .insertInto("SysAdminUnit")
        .values({
          Id: id,
          Name: login,
          NameKey: loginKey(login),
          ContactId: contactId,
          Culture: culture,
          TimeZone: timeZone,
          Active: true,
          PasswordHash: passwordHash,
          CreatedOn: now,
          CreatedById: null,
          ModifiedOn: now,
          ModifiedById: null,
        })
        .execute();
      const roles = [SystemIds.AllEmployeesRoleId, ...(user.admin ? [SystemIds.SystemAdministratorsRoleId] : [])];
      await this.db
        .insertInto("SysUserInRole")
        .values(roles.map((RoleId) => ({ UserId: id, RoleId })))
        .execute();
    }).catch((error: unknown) => {
      // Two creates of one login at once: the loser meets the unique index, not the check above.
      throw isUniqueViolation(error) ? taken() : error;
    });
    return (await this.getById(id)) as PlatformUser;
  }

  /** Activates or deactivates a user; deactivating ends the user's sessions. */
  async setActive(id: string, active: boolean): Promise<void> {
    if (!active) assertNotSupervisor(id, "deactivated");
    await this.store.transaction(async () => {
      const result = await this.db.updateTable("SysAdminUnit").set({ Active: active }).where("Id", "=", id).executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) throw new Error(`no user with id ${JSON.stringify(id)}`);
      if (!active) await this.db.deleteFrom("SysSession").where("UserId", "=", id).execute();
    });
  }

  async setPassword(id: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    // A new password ends every session signed in with the old one.
    await this.store.transaction(async () => {
      const result = await this.db.updateTable("SysAdminUnit").set({ PasswordHash: hash }).where("Id", "=", id).executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) throw new Error(`no user with id ${JSON.stringify(id)}`);
      await this.db.deleteFrom("SysSession").where("UserId", "=", id).execute();
    });
  }

  async delete(id: string): Promise<void> {
    assertNotSupervisor(id, "deleted");
    await this.store.transaction(async () => {
      await this.db.deleteFrom("SysUserInRole").where("UserId", "=", id).execute();
      await this.db.deleteFrom("SysSession").where("UserId", "=", id).execute();
      const result = await this.db.deleteFrom("SysAdminUnit").where("Id", "=", id).executeTakeFirst();
      if (Number(result.numDeletedRows) !== 1) throw new Error(`no user with id ${JSON.stringify(id)}`);
    });
  }

  async passwordHashOf(login: string): Promise<{ id: string; hash: string | null } | null> {
    const id = await this.idOfLogin(login);
    if (id === null) return null;
    const row = await this.db.selectFrom("SysAdminUnit").select(["Id", "PasswordHash"]).where("Id", "=", id).executeTakeFirst();
    return row ? { id: row.Id, hash: row.PasswordHash } : null;
  }

  /**
   * Gives the Supervisor a password on a fresh database: `password` (from UNDERWAY_ADMIN_PASSWORD)
   * or, unless `generate` is false, a generated one, which is returned so that it can be shown
   * once. Never a fixed default.
   */
  async ensureSupervisorPassword(password: string | undefined, options: { generate?: boolean } = {}): Promise<{ generated: string | null }> {
    const row = await this.db.selectFrom("SysAdminUnit").select("PasswordHash").where("Id", "=", SystemIds.SupervisorUserId).executeTakeFirst();
    if (!row || row.PasswordHash) return { generated: null };
    if (!password && options.generate === false) return { generated: null };
    const chosen = password && password.length > 0 ? password : randomBytes(12).toString("base64url");
    await this.setPassword(SystemIds.SupervisorUserId, chosen);
    return { generated: password ? null : chosen };
  }
}
