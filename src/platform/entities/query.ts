import type { Expression, ExpressionBuilder, Kysely, SqlBool } from "kysely";
import { sql } from "../db/kysely-module.ts";
import type { UserConnection } from "../user-connection.ts";
import { columnValue, readColumnValue, type DynamicTables } from "./entity.ts";
import { EntitySecurityError, EntityValidationError } from "./errors.ts";
import type { EntitySchema, EntitySchemaColumn } from "./schema.ts";

export type FilterComparison = "equal" | "notEqual" | "contains" | "startsWith" | "greater" | "less" | "isNull" | "isNotNull";

const FILTER_COMPARISONS: readonly FilterComparison[] = ["equal", "notEqual", "contains", "startsWith", "greater", "less", "isNull", "isNotNull"];
const COMPARISONS = { equal: "=", notEqual: "<>", greater: ">", less: "<" } as const;
/** The longest text a contains or startsWith filter searches for. */
const MAX_SEARCH = 1_000;
/**
 * The most records a query without setPaging returns. Without paging the platform returns every
 * record that matches; past this many, the query is refused rather than cut short or left to fill
 * the memory, so that a loop over "all" records never silently misses some.
 */
export const MAX_UNPAGED_RECORDS = 10_000;
const ORDER_DIRECTIONS: readonly string[] = ["asc", "desc"];

interface Filter {
  readonly path: string;
  readonly comparison: FilterComparison;
  readonly value: unknown;
}

interface ResolvedPath {
  /** The SQL reference: `t.Title` or `j3.Name` (the join of the schema's fourth column). */
  readonly ref: string;
  readonly column: EntitySchemaColumn;
  /** The join needed for a lookup display value. */
  readonly join?: { readonly alias: string; readonly table: string; readonly on: string; readonly schema: EntitySchema };
}

/**
 * The platform's EntitySchemaQuery: columns (with lookup display values such as `Owner.Name`),
 * filters, order and paging over one schema, with the current user's read rights applied.
 */
export class EntitySchemaQuery {
  readonly schema: EntitySchema;
  private readonly columns: string[] = [];
  private readonly filters: Filter[] = [];
  private readonly order: { path: string; direction: "asc" | "desc" }[] = [];
  private skip = 0;
  /** Set by setPaging; without it every matching record is returned (up to MAX_UNPAGED_RECORDS). */
  private take: number | undefined;
  useAdminRights = true;

  constructor(
    readonly userConnection: UserConnection,
    schemaName: string,
  ) {
    this.schema = userConnection.entitySchemaManager.getInstanceByName(schemaName);
  }

  /** Adds a column by name (`Title`, `OwnerId`) or lookup path (`Owner.Name`). */
  addColumn(path: string): this {
    this.resolve(path);
    if (!this.columns.includes(path)) this.columns.push(path);
    return this;
  }

  addFilter(path: string, comparison: FilterComparison, value?: unknown): this {
    this.resolve(path);
    if (!FILTER_COMPARISONS.includes(comparison)) {
      throw new EntityValidationError(`unknown comparison ${JSON.stringify(comparison)} on ${path}; use one of ${FILTER_COMPARISONS.join(", ")}`);
    }
    this.filters.push({ path, comparison, value });
    return this;
  }

  orderBy(path: string, direction: "asc" | "desc" = "asc"): this {
    this.resolve(path);
    // Anything else (`"ASC"`, `"descending"`) would sort one way or the other without saying so.
    if (!ORDER_DIRECTIONS.includes(direction)) {
      const given = typeof direction === "string" ? JSON.stringify(direction) : typeof direction;
      throw new EntityValidationError(`the order of ${path} must be "asc" or "desc", got ${given}`);
    }
    this.order.push({ path, direction });
    return this;
  }

  /**
   * Paging: skip `offset` rows, return at most `limit` (1-1,000). Without it, the query returns
   * every matching record, and is refused if more than MAX_UNPAGED_RECORDS match.
   */
  setPaging(offset: number, limit: number): this {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new EntityValidationError(`offset must be an integer >= 0, got ${offset}`);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new EntityValidationError(`limit must be an integer from 1 to 1,000, got ${limit}`);
    this.skip = offset;
    this.take = limit;
    return this;
  }

  private resolve(path: string): ResolvedPath {
    if (typeof path !== "string") throw new EntityValidationError(`a column path must be text`);
    const [first, second, ...rest] = path.split(".");
    if (rest.length || !first) throw new EntityValidationError(`column path ${JSON.stringify(path)} is not supported: use Column or Lookup.Column`);
    const column = this.schema.findColumn(first);
    if (!column) throw new EntityValidationError(`schema ${this.schema.name} has no column ${JSON.stringify(first)}`);
    if (second === undefined) return { ref: `t.${column.columnValueName}`, column };
    if (column.type !== "lookup" || !column.referenceSchemaName) {
      throw new EntityValidationError(`${this.schema.name}.${first} is not a lookup, so ${JSON.stringify(path)} has no meaning`);
    }
    const reference = this.userConnection.entitySchemaManager.getInstanceByName(column.referenceSchemaName);
    const target = reference.findColumn(second);
    if (!target || target.type === "lookup") throw new EntityValidationError(`schema ${reference.name} has no column ${JSON.stringify(second)} to show`);
    // Named by the column's place in the schema, not by its name: PostgreSQL cuts identifiers
    // at 63 bytes, and two long lookup names that begin alike would give one alias twice.
    const alias = `j${this.schema.columns.indexOf(column)}`;
    return { ref: `${alias}.${target.columnValueName}`, column: target, join: { alias, table: reference.name, on: `t.${column.columnValueName}`, schema: reference } };
  }

  /** Runs the query: one object per record, keyed by the column paths added (and Id). */
  async getEntityCollection(): Promise<Record<string, unknown>[]> {
    const user = this.userConnection.currentUser;
    if (this.useAdminRights && !(await this.userConnection.schemaRights(this.schema.name)).read) {
      throw new EntitySecurityError(`${user.name} has no right to read ${this.schema.name} records`);
    }
    const paths = ["Id", ...this.columns.filter((c) => c !== "Id")];
    const resolved = new Map(paths.map((p) => [p, this.resolve(p)]));
    for (const f of this.filters) resolved.set(f.path, this.resolve(f.path));
    for (const o of this.order) resolved.set(o.path, this.resolve(o.path));

    const db = this.userConnection.db as unknown as Kysely<DynamicTables>;
    let query = db.selectFrom(`${this.schema.name} as t`);
    const joined = new Set<string>();
    for (const r of resolved.values()) {
      if (!r.join || joined.has(r.join.alias)) continue;
      joined.add(r.join.alias);
      const j = r.join;
      // A lookup's display value is read with the rights on its own schema: a schema the user may
      // not read, or a record of it the user may not see, shows (and filters, and sorts) as null,
      // as a missing record does.
      const readable = !this.useAdminRights || (await this.userConnection.schemaRights(j.schema.name)).read;
      const ownOnly = this.useAdminRights && j.schema.recordRights && !user.isAdmin;
      query = query.leftJoin(`${j.table} as ${j.alias}`, (join) => {
        const on = join.onRef(`${j.alias}.Id`, "=", j.on);
        if (!readable) return on.on(sql<SqlBool>`1 = 0`);
        if (!ownOnly) return on;
        return on.on((eb) => eb.or([eb(`${j.alias}.OwnerId`, "=", user.contactId), eb(`${j.alias}.AuthorId`, "=", user.contactId)]));
      });
    }
    let select = query.select(paths.map((p, i) => `${(resolved.get(p) as ResolvedPath).ref} as c${i}`));
    for (const f of this.filters) {
      const r = resolved.get(f.path) as ResolvedPath;
      select = select.where((eb) => this.condition(eb as unknown as ExpressionBuilder<DynamicTables, string>, r, f));
    }
    if (this.useAdminRights && this.schema.recordRights && !user.isAdmin) {
      select = select.where((eb) => eb.or([eb("t.OwnerId", "=", user.contactId), eb("t.AuthorId", "=", user.contactId)]));
    }
    // No value sorts as the smallest on both stores (PostgreSQL's own default is the largest).
    for (const o of this.order) {
      select = select.orderBy((resolved.get(o.path) as ResolvedPath).ref, (ob) => (o.direction === "asc" ? ob.asc().nullsFirst() : ob.desc().nullsLast()));
    }
    // Without paging, one record more than may be returned tells that more match.
    select = select.orderBy("t.Id", "desc").limit(this.take ?? MAX_UNPAGED_RECORDS + 1).offset(this.skip);
    const rows = await select.execute();
    if (this.take === undefined && rows.length > MAX_UNPAGED_RECORDS) {
      throw new EntityValidationError(
        `a query of ${this.schema.name} without setPaging asks for every matching record, and more than ${MAX_UNPAGED_RECORDS.toLocaleString("en-US")} match: ` +
          `use setPaging(offset, limit) to read them a page (of up to 1,000) at a time`,
      );
    }
    return rows.map((row) =>
      Object.fromEntries(paths.map((p, i) => [p, readColumnValue((resolved.get(p) as ResolvedPath).column, (row as Record<string, unknown>)[`c${i}`])])),
    );
  }

  private condition(eb: ExpressionBuilder<DynamicTables, string>, r: ResolvedPath, f: Filter): Expression<SqlBool> {
    const ref = r.ref;
    switch (f.comparison) {
      case "isNull":
        return eb(ref, "is", null);
      case "isNotNull":
        return eb(ref, "is not", null);
      case "contains":
      case "startsWith": {
        if (r.column.type !== "text") throw new EntityValidationError(`a ${f.comparison} filter needs a text column; ${f.path} is ${r.column.type}`);
        if (typeof f.value !== "string") throw new EntityValidationError(`a ${f.comparison} filter on ${f.path} needs text`);
        if (f.value.length > MAX_SEARCH) throw new EntityValidationError(`a ${f.comparison} filter on ${f.path} is longer than ${MAX_SEARCH.toLocaleString("en-US")} characters`);
        // As for a value stored: PostgreSQL refuses a NUL outright, and SQLite ends the pattern at
        // it (so that "" is searched for, and every record matches); a lone surrogate is not text.
        const nul = f.value.indexOf("\u0000");
        if (nul >= 0) throw new EntityValidationError(`a ${f.comparison} filter on ${f.path} must not contain a NUL character (U+0000), at index ${nul}`);
        if (!f.value.isWellFormed()) throw new EntityValidationError(`a ${f.comparison} filter on ${f.path} is not well-formed Unicode: it holds an unpaired UTF-16 surrogate`);
        const escaped = f.value.replace(/[\\%_]/g, (c) => `\\${c}`);
        const pattern = f.comparison === "contains" ? `%${escaped}%` : `${escaped}%`;
        return sql<SqlBool>`${lowered(sql.ref(ref))} LIKE ${lowered(sql.val(pattern))} ESCAPE '\\'`;
      }
      case "equal":
      case "notEqual":
      case "greater":
      case "less": {
        const value = columnValue(r.join?.schema ?? this.schema, r.column, f.value);
        // Compared with null, = and <> match nothing: equal to null means is null.
        if (value === null) {
          if (f.comparison === "equal") return eb(ref, "is", null);
          if (f.comparison === "notEqual") return eb(ref, "is not", null);
          throw new EntityValidationError(`a ${f.comparison} filter on ${f.path} needs a value`);
        }
        return eb(ref, COMPARISONS[f.comparison], value);
      }
      default:
        throw new EntityValidationError(`unknown comparison ${JSON.stringify(f.comparison)} on ${f.path}; use one of ${FILTER_COMPARISONS.join(", ")}`);
    }
  }
}

/**
 * Text lowered for a case-insensitive search, to the same letters on both stores. The stores'
 * lower() differ for two letters. On SQLite it is JavaScript's toLowerCase (see the SQLite
 * driver), as on PostgreSQL under an ICU collation: a Σ at the end of a word lowers to ς, elsewhere
 * to σ, so that "ΟΔΟΣ" would not find "ΟΔΟΣΤΡΩΜΑ", and an İ lowers to "i" and a combining dot.
 * Under a libc locale PostgreSQL lowers letter by letter: Σ to σ, İ to "i". So İ is made "i"
 * before lowering, and ς is made σ after (the one letter, as Unicode's case folding has it).
 */
function lowered(text: Expression<unknown>): Expression<string> {
  return sql<string>`replace(lower(replace(${text}, 'İ', 'i')), 'ς', 'σ')`;
}
