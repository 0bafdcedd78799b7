/** Entity schemas: the platform's description of a business object and its table. */

export type ColumnType = "guid" | "text" | "datetime" | "boolean" | "integer" | "lookup";

/** Where a column's default comes from (filled by Entity.setDefColumnValues). */
export type ColumnDefault =
  | { readonly source: "constant"; readonly value: string | number | boolean }
  | { readonly source: "newId" }
  | { readonly source: "currentDateTime" }
  /** The contact of the user the code runs as. */
  | { readonly source: "currentUserContact" };

export interface ColumnDefinition {
  /** The column's name; a lookup `Owner` is stored as `OwnerId`. */
  readonly name: string;
  readonly type: ColumnType;
  readonly caption?: string;
  readonly required?: boolean;
  readonly default?: ColumnDefault;
  /** For lookups: the schema referred to. */
  readonly referenceSchema?: string;
}

export interface EntitySchemaDefinition {
  readonly name: string;
  readonly caption?: string;
  readonly columns: readonly ColumnDefinition[];
  /** The column shown for a record of this schema in lookups (e.g. Name, Title). */
  readonly primaryDisplayColumn: string;
  /** Records are readable and editable by their author and owner only (administrators: all). */
  readonly recordRights?: boolean;
}

/** Schema and column names: identifiers both stores take as they are. */
const NAME = /^[A-Z][A-Za-z0-9]*$/;

/**
 * The longest table or column name, in bytes (UTF-8): PostgreSQL cuts a longer identifier to
 * 63 bytes without a word (NAMEDATALEN - 1), so that a column would be stored under another name
 * than the one the platform reads (a lookup `<Name>Id` read back as null), or two would be one.
 * SQLite keeps any length: a name is refused on both stores alike.
 */
export const MAX_IDENTIFIER_BYTES = 63;

const LIMIT = `a table or column name may be at most ${MAX_IDENTIFIER_BYTES} bytes (UTF-8), the longest identifier PostgreSQL keeps whole`;

function identifierBytes(name: string): number {
  return Buffer.byteLength(name, "utf8");
}

export class EntitySchemaColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly caption: string;
  readonly required: boolean;
  readonly default: ColumnDefault | undefined;
  readonly referenceSchemaName: string | undefined;
  /** The table column holding the value: `<Name>Id` for lookups. */
  readonly columnValueName: string;

  /** `schemaName`: the schema the column belongs to, named when the column is refused. */
  constructor(definition: ColumnDefinition, schemaName?: string) {
    const of = schemaName === undefined ? "" : `schema ${schemaName}: `;
    if (typeof definition.name !== "string" || !NAME.test(definition.name)) {
      throw new Error(`${of}column name ${JSON.stringify(definition.name)} must start with a capital letter and use letters and digits only`);
    }
    if (definition.type === "lookup" && !definition.referenceSchema) {
      throw new Error(`${of}lookup column ${definition.name} needs a referenceSchema`);
    }
    const columnValueName = definition.type === "lookup" ? `${definition.name}Id` : definition.name;
    const bytes = identifierBytes(columnValueName);
    if (bytes > MAX_IDENTIFIER_BYTES) {
      throw new Error(
        definition.type === "lookup"
          ? `${of}the lookup column ${definition.name} is stored as ${columnValueName}, ${bytes} bytes long: ${LIMIT}, so a lookup's name at most ${MAX_IDENTIFIER_BYTES - 2} (its column adds "Id")`
          : `${of}the column ${definition.name} is ${bytes} bytes long: ${LIMIT}`,
      );
    }
    this.name = definition.name;
    this.type = definition.type;
    this.caption = definition.caption ?? definition.name;
    this.required = definition.required ?? false;
    this.default = definition.default;
    this.referenceSchemaName = definition.referenceSchema;
    this.columnValueName = columnValueName;
  }
}

/**
 * The columns the platform itself writes or reads by name, whatever the schema: a schema need not
 * have them, but a column that takes one of their names (or stored names) must be that column.
 */
const SYSTEM_COLUMNS: readonly { readonly name: string; readonly type: ColumnType; readonly referenceSchema?: string; readonly role: string }[] = [
  { name: "Id", type: "guid", role: "the record's key, which the platform fills with a new GUID and finds records by" },
  { name: "CreatedOn", type: "datetime", role: "stamped with the time a record is added" },
  { name: "CreatedBy", type: "lookup", referenceSchema: "Contact", role: "stamped (as CreatedById) with the contact of the user who adds a record" },
  { name: "ModifiedOn", type: "datetime", role: "stamped with the time a record is saved" },
  { name: "ModifiedBy", type: "lookup", referenceSchema: "Contact", role: "stamped (as ModifiedById) with the contact of the user who saves a record" },
];

/** ASCII case folding: names are ASCII letters and digits (NAME). */
function folded(name: string): string {
  return name.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

function described(column: EntitySchemaColumn): string {
  return column.type === "lookup" ? `the lookup column ${column.name} (to ${column.referenceSchemaName}, stored as ${column.columnValueName})` : `the ${column.type} column ${column.name}`;
}

/**
 * Refuses two columns one name would stand for: the schema finds a column by its name or a lookup's
 * stored name (`Owner`, `OwnerId`), and the table holds one column per stored name. Names equal but
 * for letter case are refused too: SQLite takes them for one column, PostgreSQL for two. And a
 * column named as a system column (SYSTEM_COLUMNS) must be that column.
 */
function refuseClashes(schemaName: string, columns: readonly EntitySchemaColumn[]): void {
  const seen = new Map<string, { column: EntitySchemaColumn; identifier: string }>();
  for (const column of columns) {
    const identifiers = column.columnValueName === column.name ? [column.name] : [column.name, column.columnValueName];
    for (const identifier of identifiers) {
      const earlier = seen.get(folded(identifier));
      if (earlier && earlier.column !== column) {
        const stored = earlier.column.columnValueName === column.columnValueName ? `, and the table would hold both in its one column ${column.columnValueName}` : "";
        const why =
          earlier.identifier === identifier
            ? `the schema would find both by the name ${identifier}${stored}: each column needs a name, and a lookup a stored name (<name>Id), of its own`
            : `${earlier.identifier} and ${identifier} differ only in letter case, which SQLite ignores (one column) and PostgreSQL does not (two columns): names and stored names (a lookup's <name>Id) must differ in more than letter case`;
        throw new Error(`schema ${schemaName}: ${described(earlier.column)} and ${described(column)} clash: ${why}`);
      }
      seen.set(folded(identifier), { column, identifier });
    }
  }
  for (const column of columns) {
    for (const system of SYSTEM_COLUMNS) {
      const systemIdentifiers = new Set(system.type === "lookup" ? [folded(system.name), folded(`${system.name}Id`)] : [folded(system.name)]);
      if (!systemIdentifiers.has(folded(column.name)) && !systemIdentifiers.has(folded(column.columnValueName))) continue;
      if (column.name === system.name && column.type === system.type && (column.type !== "lookup" || column.referenceSchemaName === system.referenceSchema)) continue;
      const expected = system.type === "lookup" ? `a lookup column ${system.name} to ${system.referenceSchema}` : `a ${system.type} column ${system.name}`;
      throw new Error(
        `schema ${schemaName}: ${described(column)} clashes with the system column ${system.name}, ${system.role}: a column of that name${system.type === "lookup" ? ` (or stored name ${system.name}Id)` : ""}, in any letter case, must be ${expected}`,
      );
    }
  }
}

export class EntitySchema {
  readonly name: string;
  readonly caption: string;
  readonly columns: readonly EntitySchemaColumn[];
  readonly primaryDisplayColumnName: string;
  readonly recordRights: boolean;
  private readonly byName = new Map<string, EntitySchemaColumn>();

  constructor(definition: EntitySchemaDefinition) {
    if (typeof definition.name !== "string" || !NAME.test(definition.name)) {
      throw new Error(`schema name ${JSON.stringify(definition.name)} must start with a capital letter and use letters and digits only`);
    }
    const bytes = identifierBytes(definition.name);
    if (bytes > MAX_IDENTIFIER_BYTES) {
      throw new Error(`schema ${definition.name}: its name, its table's, is ${bytes} bytes long: ${LIMIT}`);
    }
    this.name = definition.name;
    this.caption = definition.caption ?? definition.name;
    this.columns = definition.columns.map((c) => new EntitySchemaColumn(c, definition.name));
    this.primaryDisplayColumnName = definition.primaryDisplayColumn;
    this.recordRights = definition.recordRights ?? false;
    refuseClashes(this.name, this.columns);
    for (const c of this.columns) {
      this.byName.set(c.name, c);
      if (c.columnValueName !== c.name) this.byName.set(c.columnValueName, c);
    }
    if (!this.byName.has("Id")) throw new Error(`schema ${this.name} has no Id column`);
    if (!this.byName.has(this.primaryDisplayColumnName)) throw new Error(`schema ${this.name} has no column ${this.primaryDisplayColumnName}`);
  }

  /** A column by its name or its value name (`Owner` or `OwnerId`); undefined if none. */
  findColumn(name: string): EntitySchemaColumn | undefined {
    return this.byName.get(name);
  }

  getColumn(name: string): EntitySchemaColumn {
    const column = this.byName.get(name);
    if (!column) throw new Error(`schema ${this.name} has no column ${JSON.stringify(name)}`);
    return column;
  }
}

/** The schemas one application knows, by name. */
export class EntitySchemaManager {
  private readonly schemas = new Map<string, EntitySchema>();

  constructor(definitions: readonly EntitySchemaDefinition[] = []) {
    for (const d of definitions) this.register(d);
  }

  register(definition: EntitySchemaDefinition | EntitySchema): EntitySchema {
    const schema = definition instanceof EntitySchema ? definition : new EntitySchema(definition);
    this.schemas.set(schema.name, schema);
    return schema;
  }

  getInstanceByName(name: string): EntitySchema {
    const schema = this.schemas.get(name);
    if (!schema) throw new Error(`no entity schema named ${JSON.stringify(name)}`);
    return schema;
  }

  findInstanceByName(name: string): EntitySchema | undefined {
    return this.schemas.get(name);
  }

  /** The lookup columns of every registered schema that refer to the named schema. */
  referencesTo(name: string): { schema: EntitySchema; column: EntitySchemaColumn }[] {
    const found: { schema: EntitySchema; column: EntitySchemaColumn }[] = [];
    for (const schema of this.schemas.values()) {
      for (const column of schema.columns) if (column.type === "lookup" && column.referenceSchemaName === name) found.push({ schema, column });
    }
    return found;
  }
}
