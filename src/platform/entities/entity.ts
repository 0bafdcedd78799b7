import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { normalizeGuid } from "../constants.ts";
import { sql } from "../db/kysely-module.ts";
import { isUniqueViolation, parseIsoInstant, toBoolean, toDate } from "../db/values.ts";
import type { UserConnection } from "../user-connection.ts";
import { EntityInUseError, EntitySecurityError, EntityValidationError } from "./errors.ts";
import type { Operation } from "./rights.ts";
import type { EntitySchema, EntitySchemaColumn } from "./schema.ts";

/** Any platform table, by name: entity code works on schemas known only at run time. */
export type DynamicTables = Record<string, Record<string, unknown>>;

/** The dates both stores keep alike: the years 1 to 9999 (UTC). */
const MIN_DATE_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z (Date.UTC reads the years 0-99 as 1900-1999)
const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Lookups that record who created or last changed a record: they do not keep their contact from being deleted. */
const AUDIT_LOOKUPS = new Set(["CreatedBy", "ModifiedBy"]);

const VERBS: Record<Operation, string> = { read: "read", insert: "add", update: "edit", delete: "delete" };

/** Converts a value given for a column to its stored form, or says what is wrong with it. */
export function columnValue(schema: EntitySchema, column: EntitySchemaColumn, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  const where = `${schema.name}.${column.columnValueName}`;
  switch (column.type) {
    case "guid":
    case "lookup": {
      const guid = normalizeGuid(value);
      if (!guid) throw new EntityValidationError(`${where} must be a GUID, got ${JSON.stringify(value)}`);
      return guid;
    }
    case "text":
      if (typeof value !== "string") throw new EntityValidationError(`${where} must be text, got ${typeof value}`);
      if (value.length > 10_000) throw new EntityValidationError(`${where} is longer than 10,000 characters`);
      // Neither store keeps these as given: PostgreSQL refuses a NUL, and a lone surrogate is
      // not Unicode (it would be stored as U+FFFD).
      if (value.includes("\u0000")) throw new EntityValidationError(`${where} must not contain a NUL character (U+0000), at index ${value.indexOf("\u0000")}`);
      if (!value.isWellFormed()) throw new EntityValidationError(`${where} is not well-formed Unicode: it holds an unpaired UTF-16 surrogate`);
      return value;
    case "datetime": {
      const date = value instanceof Date ? value : typeof value === "string" ? parseIsoInstant(value) : typeof value === "number" ? new Date(value) : null;
      if (!date || Number.isNaN(date.getTime())) {
        throw new EntityValidationError(
          `${where} must be a date and time: a Date, milliseconds since 1970, or ISO 8601 text such as "2026-12-07T10:30:00+01:00" (without an offset, UTC; a date alone is midnight UTC), got ${JSON.stringify(value)}`,
        );
      }
      const ms = date.getTime();
      if (ms < MIN_DATE_MS || ms > MAX_DATE_MS) {
        throw new EntityValidationError(`${where} must be a date and time from the year 1 to the year 9999, got ${JSON.stringify(value)}`);
      }
      return new Date(ms);
    }
    case "boolean":
      if (typeof value !== "boolean") throw new EntityValidationError(`${where} must be true or false, got ${JSON.stringify(value)}`);
      return value;
    case "integer":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new EntityValidationError(`${where} must be an integer, got ${JSON.stringify(value)}`);
      return value;
  }
}

/** No value, for a required column: null, or text with nothing but white space. */
function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || (typeof value === "string" && value.trim() === "");
}

/** A stored value read back from either store, in the column's type. */
export function readColumnValue(column: EntitySchemaColumn, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (column.type === "datetime") return toDate(value);
  if (column.type === "boolean") return toBoolean(value);
  if (column.type === "integer") return Number(value);
  return value;
}

/**
 * One record of an entity schema. `useAdminRights` keeps the platform's meaning: true (the default)
 * checks the current user's rights on every operation; false skips the checks.
 */
export class Entity {
  useAdminRights = true;
  private readonly values = new Map<string, unknown>();
  /** Value names set since the record was read or saved: what an update writes. */
  private readonly changed = new Set<string>();
  private stored = false;

  constructor(
    readonly userConnection: UserConnection,
    readonly schema: EntitySchema,
  ) {}

  /** A new, empty entity of the named schema. */
  static create(userConnection: UserConnection, schemaName: string): Entity {
    return new Entity(userConnection, userConnection.entitySchemaManager.getInstanceByName(schemaName));
  }

  /** True until the entity was saved or fetched. */
  get isNew(): boolean {
    return !this.stored;
  }

  get id(): string | null {
    return (this.values.get("Id") as string | undefined) ?? null;
  }

  set id(value: string | null) {
    this.setColumnValue("Id", value);
  }

  /** The value of a column by name (`Title`) or value name (`OwnerId`); a lookup gives its id. */
  getColumnValue(name: string): unknown {
    const column = this.schema.getColumn(name);
    return this.values.get(column.columnValueName) ?? null;
  }

  setColumnValue(name: string, value: unknown): void {
    const column = this.schema.getColumn(name);
    if (column.name === "Id" && this.stored && normalizeGuid(value) !== this.id) {
      throw new EntityValidationError(`${this.schema.name}.Id of a stored record cannot change`);
    }
    this.values.set(column.columnValueName, columnValue(this.schema, column, value));
    this.changed.add(column.columnValueName);
  }

  /** Fills every column that has a default and no value yet. */
  setDefColumnValues(): void {
    for (const column of this.schema.columns) {
      const current = this.values.get(column.columnValueName);
      if (current !== undefined && current !== null) continue;
      const d = column.default;
      if (!d) continue;
      let value: unknown;
      if (d.source === "constant") value = d.value;
      else if (d.source === "newId") value = randomUUID();
      else if (d.source === "currentDateTime") value = new Date();
      else value = this.userConnection.currentUser.contactId;
      this.values.set(column.columnValueName, columnValue(this.schema, column, value));
      this.changed.add(column.columnValueName);
    }
  }

  private get db(): Kysely<DynamicTables> {
    return this.userConnection.db as unknown as Kysely<DynamicTables>;
  }

  private async assertRight(operation: Operation, recordOwner?: { owner: unknown; author: unknown }): Promise<void> {
    if (!this.useAdminRights) return;
    const user = this.userConnection.currentUser;
    const rights = await this.userConnection.schemaRights(this.schema.name);
    if (!rights[operation]) {
      throw new EntitySecurityError(`${user.name} has no right to ${VERBS[operation]} ${this.schema.name} records`);
    }
    if (recordOwner && this.schema.recordRights && !user.isAdmin) {
      if (recordOwner.owner !== user.contactId && recordOwner.author !== user.contactId) {
        throw new EntitySecurityError(`${user.name} has no right to ${VERBS[operation]} this ${this.schema.name} record (${String(this.id)})`);
      }
    }
  }

  /** Loads the record with this id; false when there is none (or the user may not read it). */
  async fetchFromDB(id: string): Promise<boolean> {
    const key = normalizeGuid(id);
    if (!key) throw new EntityValidationError(`${this.schema.name}.Id must be a GUID, got ${JSON.stringify(id)}`);
    if (this.useAdminRights && !(await this.userConnection.schemaRights(this.schema.name)).read) {
      throw new EntitySecurityError(`${this.userConnection.currentUser.name} has no right to read ${this.schema.name} records`);
    }
    const row = await this.db.selectFrom(this.schema.name).selectAll().where("Id", "=", key).executeTakeFirst();
    if (!row) return false;
    if (this.useAdminRights && this.schema.recordRights && !this.userConnection.currentUser.isAdmin) {
      const me = this.userConnection.currentUser.contactId;
      if (row.OwnerId !== me && row.AuthorId !== me) return false;
    }
    this.values.clear();
    this.changed.clear();
    for (const column of this.schema.columns) this.values.set(column.columnValueName, readColumnValue(column, row[column.columnValueName]));
    this.stored = true;
    return true;
  }

  /**
   * Inserts or updates the record. `validateRequired` (default true) refuses a save while a
   * required column has no value; false skips that check (the database may still refuse).
   */
  async save(validateRequired = true): Promise<boolean> {
    if (validateRequired) {
      const missing = this.schema.columns.filter((c) => c.required && c.name !== "Id" && isEmpty(this.values.get(c.columnValueName)));
      if (missing.length) {
        throw new EntityValidationError(`${this.schema.name} cannot be saved: required ${missing.length === 1 ? "column" : "columns"} ${missing.map((c) => c.caption).join(", ")} ${missing.length === 1 ? "has" : "have"} no value`);
      }
    }
    if (!this.values.get("Id")) this.values.set("Id", randomUUID());
    const user = this.userConnection.currentUser;
    const stamp = (name: string, value: unknown): void => {
      if (this.schema.findColumn(name)) this.values.set(name, value);
    };
    // Rights, lookups and the write in one transaction. On PostgreSQL the record is locked as it is
    // read (its owner cannot change before the write) and the records its lookups name are locked
    // in share mode (they cannot be deleted before this commits); SQLite writes one at a time.
    await this.userConnection.appConnection.transaction(async () => {
      // Stamped inside the transaction, after the record's lock: on SQLite, whose transactions
      // write one at a time, stamps then follow the order of the commits, which the change feed
      // reads (a stamp taken before waiting would commit after a later one).
      const stampModified = (): Date => {
        const now = new Date();
        stamp("ModifiedOn", now);
        stamp("ModifiedById", user.contactId);
        return now;
      };
      if (this.stored) {
        const current = await this.readForWrite();
        if (!current) throw new EntityValidationError(`${this.schema.name} record ${String(this.id)} no longer exists`);
        stampModified();
        await this.assertRight("update", { owner: current.OwnerId, author: current.AuthorId });
        await this.checkLookups(current);
        // Only the columns set since the record was read: a save from a copy read before another
        // user's save keeps what that user changed in the other columns.
        const written = new Set([...this.changed, "ModifiedOn", "ModifiedById"]);
        const row = Object.fromEntries(
          [...this.values].filter(([name]) => written.has(name) && name !== "Id" && name !== "CreatedOn" && name !== "CreatedById"),
        );
        await this.db.updateTable(this.schema.name).set(row).where("Id", "=", this.id).execute();
      } else {
        // Who created it and when are the platform's to say, whatever the caller set.
        const now = stampModified();
        stamp("CreatedOn", now);
        stamp("CreatedById", user.contactId);
        await this.assertRight("insert");
        await this.checkLookups(undefined);
        try {
          await this.db.insertInto(this.schema.name).values(Object.fromEntries(this.values)).execute();
        } catch (error) {
          // The store's own words would name a constraint; the Id is the only unique column.
          if (isUniqueViolation(error)) {
            throw new EntityValidationError(`${this.schema.name} cannot be saved: a record with the Id ${String(this.id)} already exists`, { cause: error });
          }
          throw error;
        }
      }
    });
    this.stored = true;
    this.changed.clear();
    return true;
  }

  /**
   * Refuses a lookup value that names no record of its schema. Only values this save sets or
   * changes are looked up (`current` is the stored row of an update), whatever the user may read:
   * a reference is checked, not shown.
   */
  private async checkLookups(current: Record<string, unknown> | undefined): Promise<void> {
    const checks: { column: EntitySchemaColumn; referenced: EntitySchema; id: unknown }[] = [];
    for (const column of this.schema.columns) {
      if (column.type !== "lookup") continue;
      const id = this.values.get(column.columnValueName);
      if (id === null || id === undefined || (current && current[column.columnValueName] === id)) continue;
      const referenced = this.userConnection.entitySchemaManager.findInstanceByName(column.referenceSchemaName!);
      if (!referenced) throw new Error(`${this.schema.name}.${column.name} refers to the schema ${JSON.stringify(column.referenceSchemaName)}, which is not registered`);
      checks.push({ column, referenced, id });
    }
    if (checks.length === 0) return;
    // One statement for them all: an Activity sets half a dozen lookups. (Column names are identifiers, checked by EntitySchemaColumn.)
    // On PostgreSQL each referenced record is locked in share mode (a delete waits for this
    // transaction, then finds the reference): a locking clause needs a CTE per lookup, not a UNION's branch.
    const select = ({ column, referenced, id }: (typeof checks)[number]) =>
      sql`SELECT ${sql.lit(column.columnValueName)} AS c FROM ${sql.table(referenced.name)} WHERE ${sql.ref("Id")} = ${id}`;
    const { rows } =
      this.userConnection.appConnection.dialect === "postgres"
        ? await sql<{ c: string }>`WITH ${sql.join(checks.map((check, i) => sql`${sql.ref(`l${i}`)} AS (${select(check)} FOR SHARE)`))} ${sql.join(
            checks.map((_, i) => sql`SELECT c FROM ${sql.ref(`l${i}`)}`),
            sql` UNION ALL `,
          )}`.execute(this.db)
        : await sql<{ c: string }>`${sql.join(checks.map(select), sql` UNION ALL `)}`.execute(this.db);
    const found = new Set(rows.map((row) => row.c));
    const missing = checks.find(({ column }) => !found.has(column.columnValueName));
    if (missing) {
      throw new EntityValidationError(
        `${this.schema.name}.${missing.column.columnValueName} refers to no ${missing.referenced.name} record: there is none with the Id ${String(missing.id)}`,
      );
    }
  }

  /** The stored row, locked until the transaction ends on PostgreSQL (SQLite's write transaction holds the whole file). */
  private readForWrite(): Promise<Record<string, unknown> | undefined> {
    const query = this.db.selectFrom(this.schema.name).selectAll().where("Id", "=", this.id);
    return (this.userConnection.appConnection.dialect === "postgres" ? query.forUpdate() : query).executeTakeFirst();
  }

  /**
   * Deletes the stored record. Refused (EntityInUseError, nothing deleted) while a lookup of
   * another record refers to it (the audit columns CreatedBy and ModifiedBy excepted: they keep
   * the id of whoever it was), or while it is a user's contact.
   */
  async delete(): Promise<boolean> {
    if (!this.stored || !this.id) throw new EntityValidationError(`${this.schema.name}: only a stored record can be deleted`);
    const deleted = await this.userConnection.appConnection.transaction(async () => {
      const current = await this.readForWrite();
      if (!current) return false;
      await this.assertRight("delete", { owner: current.OwnerId, author: current.AuthorId });
      const result = await this.db.deleteFrom(this.schema.name).where("Id", "=", this.id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false; // deleted by someone else meanwhile
      // Looked for after the delete: on PostgreSQL a save that names this record holds it in share
      // mode, so the delete waited for that save, and its reference is seen here.
      await this.refuseWhileReferenced();
      // Counted for the pages that list the schema's records (the change feed).
      await this.db
        .insertInto("SysEntityDeletion")
        .values({ SchemaName: this.schema.name, Deletions: 1 })
        .onConflict((oc) => oc.column("SchemaName").doUpdateSet({ Deletions: sql<number>`${sql.ref("SysEntityDeletion.Deletions")} + 1` }))
        .execute();
      return true;
    });
    this.stored = false;
    return deleted;
  }

  /** Throws EntityInUseError naming what refers to this record (rolling the delete back). */
  private async refuseWhileReferenced(): Promise<void> {
    const references = this.userConnection.appConnection.entitySchemaManager
      .referencesTo(this.schema.name)
      .filter(({ column }) => !AUDIT_LOOKUPS.has(column.name))
      .map(({ schema, column }) => ({ table: schema.name, column: column.columnValueName, one: `${schema.name} record (${column.name})`, many: `${schema.name} records (${column.name})` }));
    if (this.schema.name === "Contact") references.push({ table: "SysAdminUnit", column: "ContactId", one: "user (as its contact)", many: "users (as their contact)" });
    if (references.length === 0) return;
    // One statement: how many of each (up to 1,000), each an index or table range.
    const { rows } = await sql<{ i: number | string; n: number | string }>`${sql.join(
      references.map(
        ({ table, column }, i) =>
          sql`SELECT ${sql.lit(i)} AS i, count(*) AS n FROM (SELECT 1 AS x FROM ${sql.table(table)} WHERE ${sql.ref(column)} = ${this.id} LIMIT 1000) AS ${sql.ref(`r${i}`)}`,
      ),
      sql` UNION ALL `,
    )}`.execute(this.db);
    const used = rows
      .filter((r) => Number(r.n) > 0)
      .sort((a, b) => Number(a.i) - Number(b.i))
      .map((r) => {
        const n = Number(r.n);
        const reference = references[Number(r.i)]!;
        return n === 1 ? `1 ${reference.one}` : `${n >= 1000 ? "1,000 or more" : n} ${reference.many}`;
      });
    if (used.length > 0) {
      throw new EntityInUseError(`${this.schema.name} record ${String(this.id)} cannot be deleted: ${used.join(", ")} ${used.length === 1 && used[0]!.startsWith("1 ") ? "refers" : "refer"} to it`);
    }
  }
}
