import type { Kysely } from "kysely";
import type { UserConnectionLike } from "../tasks/types.ts";
import type { PlatformTables } from "./db/tables.ts";
import { schemaRightsOf, type SchemaRights } from "./entities/rights.ts";
import type { EntitySchemaManager } from "./entities/schema.ts";
import type { ProcessEngine } from "./processes/engine.ts";

/** The user a connection works as. */
export interface CurrentUser {
  readonly id: string;
  readonly name: string;
  readonly contactId: string;
  readonly contactName: string;
  readonly culture: string;
  readonly timeZone: string;
  readonly isAdmin: boolean;
  readonly roleIds: readonly string[];
}

/** What every UserConnection of one application shares. */
export interface AppConnection {
  readonly db: Kysely<PlatformTables>;
  readonly entitySchemaManager: EntitySchemaManager;
  /** A connection of the system user, for explicit system work: no rights are checked for it. */
  readonly systemUserConnection: UserConnection;
  readonly processEngine: ProcessEngine;
  /** The store's SQL dialect. */
  readonly dialect: "sqlite" | "postgres";
  /** Runs fn in one store transaction (joining one already open): every query and entity save in it. */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * The platform's UserConnection: who the code runs as, with access to entities and queries under
 * that user's rights. Tasks started with Task.startNewWithUserConnection receive one through
 * setUserConnection before run.
 */
export class UserConnection implements UserConnectionLike {
  private readonly rightsCache = new Map<string, Promise<SchemaRights>>();

  constructor(
    readonly appConnection: AppConnection,
    readonly currentUser: CurrentUser,
  ) {}

  get db(): Kysely<PlatformTables> {
    return this.appConnection.db;
  }

  get entitySchemaManager(): EntitySchemaManager {
    return this.appConnection.entitySchemaManager;
  }

  /** The platform's process engine, as this user: `processEngine.processExecutor.execute(code, parameters)`. */
  get processEngine(): { readonly processExecutor: { execute(code: string, parameters?: Record<string, unknown>): Promise<{ instanceId: string }> } } {
    const engine = this.appConnection.processEngine;
    return { processExecutor: { execute: (code, parameters = {}) => engine.execute(this, code, parameters) } };
  }

  /** The current date and time in the user's time zone, as a local ISO text (no offset). */
  getCurrentDateTime(now: Date = new Date()): string {
    const parts = new Intl.DateTimeFormat("en-CA", {
      timeZone: this.currentUser.timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    }).formatToParts(now);
    const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? "00";
    const ms = String(now.getUTCMilliseconds()).padStart(3, "0");
    return `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}:${get("second")}.${ms}`;
  }

  /** What this user's roles may do with a schema (cached for the connection's life). */
  schemaRights(schemaName: string): Promise<SchemaRights> {
    let rights = this.rightsCache.get(schemaName);
    if (!rights) {
      rights = schemaRightsOf(this.db, this.currentUser, schemaName);
      this.rightsCache.set(schemaName, rights);
      // A lookup that failed (a transaction that had failed already, a lost connection) is not
      // remembered: the next one asks again.
      const cached = rights;
      rights.catch(() => {
        if (this.rightsCache.get(schemaName) === cached) this.rightsCache.delete(schemaName);
      });
    }
    return rights;
  }
}
