import { createHash, randomUUID } from "node:crypto";
import { readFile, realpath } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import type { Kysely, RawBuilder } from "kysely";
import { sql } from "../db/kysely-module.ts";
import { isUniqueViolation } from "../db/values.ts";
import type { StorageDriver } from "../../store/driver.ts";
import type { PlatformTables } from "../db/tables.ts";
import { parseProcess, type ProcessDefinition } from "../processes/bpmn/index.ts";
import { compilePackage, type CompiledPackage, type ProcessCondition, type ProcessScript, type SourceSchema } from "./compiler/index.ts";
import { isValidName, PLATFORM_MODULE } from "./compiler/names.ts";
import { PackageInputError, PackageNotFoundError } from "./errors.ts";
import { PackageScheduleError, parsePackageSchedules, type PackageSchedule } from "./schedules.ts";
import { checkKnownKeys } from "../../tasks/known-keys.ts";

export type SchemaKind = "source" | "process";

export interface SchemaInput {
  readonly name: string;
  readonly kind: SchemaKind;
  readonly caption?: string;
  /** TypeScript source, or BPMN 2.0 XML for a process. */
  readonly body: string;
}

export interface SchemaRecord extends Required<SchemaInput> {
  readonly modifiedOn: Date | null;
}

/** What a published build holds besides its code. */
export interface BuildManifest {
  readonly packageName: string;
  readonly version: number;
  readonly exports: Readonly<Record<string, readonly string[]>>;
  readonly schemas: readonly SourceSchema[];
  /** Process code -> BPMN XML, as published. */
  readonly processes: Readonly<Record<string, string>>;
  /** The recurring tasks the build declares (absent in builds older than package schedules). */
  readonly schedules?: readonly PackageSchedule[];
  /**
   * The builds of its dependencies it was compiled against, by package name: what it runs with,
   * whatever they publish later (absent in older builds, which run with the newest).
   */
  readonly dependencies?: Readonly<Record<string, number>>;
  /**
   * The fingerprint of the package folder the package was last installed from (its
   * underway-package.json and schema files), carried over by later publishes: a start given the
   * folder installs it again once it differs. Absent for a package never installed from a folder.
   */
  readonly folder?: string;
}

/** What the platform does around a publish (package schedules). */
export interface PublishHooks {
  /** Checks a compiled build before it is stored; throwing refuses it, and the previous build stays. */
  readonly check?: (build: {
    readonly packageName: string;
    readonly compiled: CompiledPackage;
    /** The builds of its dependencies it was compiled against, by package name. */
    readonly dependencies: Readonly<Record<string, number>>;
    readonly schedules: readonly PackageSchedule[];
  }) => Promise<void>;
  /** Runs once a build is stored, with the manifest of the build before it (null for the first). */
  readonly published?: (build: { readonly manifest: BuildManifest; readonly previous: BuildManifest | null }) => Promise<void>;
}

export interface PublishOptions {
  /** The recurring tasks the new build declares, replacing the previous build's. */
  readonly schedules?: readonly unknown[];
  /** The fingerprint of the package folder just imported (PackageFolder.fingerprint). */
  readonly folder?: string;
}

export interface PackageBuild {
  readonly manifest: BuildManifest;
  readonly code: string;
}

/** A package folder: `underway-package.json` plus the schema files it lists. */
export interface PackageDescriptor {
  readonly name: string;
  readonly description?: string;
  readonly dependencies?: readonly string[];
  readonly schemas: readonly { readonly name: string; readonly kind: SchemaKind; readonly file: string; readonly caption?: string }[];
  /** Recurring tasks of the package's task classes, defined when a build is published. */
  readonly schedules?: readonly PackageSchedule[];
}

/** A package folder read and checked whole, before anything of it is saved. */
export interface PackageFolder {
  /** The descriptor, its schedules checked. */
  readonly descriptor: PackageDescriptor & { readonly schedules: readonly PackageSchedule[] };
  /** The schemas with their texts, in the descriptor's order. */
  readonly schemas: readonly Required<SchemaInput>[];
  /** SHA-256 of underway-package.json and the schema files: tells a changed folder from the one installed. */
  readonly fingerprint: string;
}

export const DESCRIPTOR_FILE = "underway-package.json";

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;
const MAX_BODY = 1024 * 1024;
const MAX_PUBLISH_ATTEMPTS = 5;

/** A package or schema name: an identifier, and none that the compiler or the platform keeps for itself. */
function checkName(name: string, what: "package name" | "schema name"): void {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new PackageInputError(`${what} ${JSON.stringify(name)} must be letters, digits and _ (at most 100), starting with a letter`);
  }
  if (!isValidName(name) || name === PLATFORM_MODULE) {
    throw new PackageInputError(`${what} ${JSON.stringify(name)} is reserved: choose another`);
  }
}

/** A schema's name, kind, size and, for a process, its diagram: what saving checks before it writes. */
async function checkSchema(schema: SchemaInput): Promise<void> {
  checkName(schema.name, "schema name");
  if (schema.kind !== "source" && schema.kind !== "process") throw new PackageInputError(`schema kind must be "source" or "process", got ${JSON.stringify(schema.kind)}`);
  if (typeof schema.body !== "string") throw new PackageInputError("a schema body must be text");
  if (schema.body.length > MAX_BODY) throw new PackageInputError(`schema ${schema.name} is larger than 1 MiB`);
  if (schema.kind === "process") {
    const definition = await parseProcess(schema.body);
    if (definition.code !== schema.name) {
      throw new PackageInputError(`the process id in the diagram is ${JSON.stringify(definition.code)}; it must be the schema name ${JSON.stringify(schema.name)}`);
    }
  }
}

/** Refuses a schema name that differs from another of the same package only in case: TypeScript cannot tell such files apart. */
function caseClash(packageName: string, name: string, other: string): PackageInputError {
  return new PackageInputError(
    `package ${packageName} has a schema named ${other}, which differs from ${name} only in case: a package's schema names must differ by more than case (TypeScript cannot tell the files apart)`,
  );
}

/**
 * Reads a package folder's underway-package.json and checks the type of each field; every
 * message names the file.
 */
export async function readPackageDescriptor(folder: string): Promise<PackageDescriptor & { readonly schedules: readonly PackageSchedule[] }> {
  return (await readDescriptorFile(folder)).descriptor;
}

async function readDescriptorFile(folder: string): Promise<{ descriptor: PackageDescriptor & { readonly schedules: readonly PackageSchedule[] }; text: string }> {
  const file = join(resolve(folder), DESCRIPTOR_FILE);
  let text: string;
  let value: unknown;
  try {
    text = await readFile(file, "utf8");
    value = JSON.parse(text);
  } catch (error) {
    throw new PackageInputError(`cannot read the package descriptor ${file}: ${(error as Error).message}`, { cause: error });
  }
  const fail = (detail: string): never => {
    throw new PackageInputError(`${file}: ${detail}`);
  };
  // A value as the message shows it: cut short, should a whole object stand where a name belongs.
  const shown = (v: unknown): string => {
    const text = JSON.stringify(v) ?? String(v);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  };
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(value)) return fail(`must be an object with a name and a list of schemas, got ${shown(value)}`);
  const d = value;
  // A misspelled field ("dependecies", "schedule") would otherwise be ignored without a word.
  const known = (v: Record<string, unknown>, keys: readonly string[], at: string) =>
    checkKnownKeys(v, keys, at, PackageInputError, "field");
  known(d, ["name", "description", "dependencies", "schemas", "schedules"], file);
  if (typeof d.name !== "string") fail(`"name" must be the package name, got ${shown(d.name)}`);
  try {
    checkName(d.name as string, "package name");
  } catch (error) {
    fail(`"name": ${(error as Error).message}`);
  }
  if (d.description !== undefined && typeof d.description !== "string") fail(`"description" must be text, got ${shown(d.description)}`);
  if (d.dependencies !== undefined) {
    if (!Array.isArray(d.dependencies)) fail(`"dependencies" must be a list of package names, got ${shown(d.dependencies)}`);
    for (const [i, dep] of (d.dependencies as unknown[]).entries()) {
      if (typeof dep !== "string" || !NAME.test(dep)) fail(`"dependencies"[${i}] must be a package name, got ${shown(dep)}`);
    }
  }
  if (!Array.isArray(d.schemas)) return fail(`"schemas" must be a list of { name, kind, file, caption? }, got ${shown(d.schemas)}`);
  const byName = new Map<string, string>();
  for (const [i, s] of (d.schemas as unknown[]).entries()) {
    const at = `"schemas"[${i}]`;
    if (!isObject(s)) return fail(`${at} must be an object { name, kind, file, caption? }, got ${shown(s)}`);
    known(s, ["name", "kind", "file", "caption"], `${file}: ${at}`);
    if (typeof s.name !== "string") fail(`${at}.name must be a schema name, got ${shown(s.name)}`);
    const name = s.name as string;
    try {
      checkName(name, "schema name");
    } catch (error) {
      fail(`${at}.name: ${(error as Error).message}`);
    }
    if (s.kind !== "source" && s.kind !== "process") fail(`${at} (${name}): kind must be "source" or "process", got ${shown(s.kind)}`);
    if (typeof s.file !== "string" || s.file === "") fail(`${at} (${name}): file must be a path in the package folder, got ${shown(s.file)}`);
    if (s.caption !== undefined && typeof s.caption !== "string") fail(`${at} (${name}): caption must be text, got ${shown(s.caption)}`);
    const other = byName.get(name.toLowerCase());
    if (other === name) fail(`lists the schema ${name} twice`);
    if (other !== undefined) fail(`lists the schemas ${other} and ${name}, whose names differ only in case: a package's schema names must differ by more than case (TypeScript cannot tell the files apart)`);
    byName.set(name.toLowerCase(), name);
  }
  // The code the schedules name is checked when publishing.
  const schedules = parsePackageSchedules(d.name as string, d.schedules);
  return { descriptor: { ...(d as unknown as PackageDescriptor), schedules }, text };
}

/**
 * A published build whose stored manifest cannot be read: its SysPackageBuild row was changed by
 * hand (an operator's UPDATE, a bad restore). The message names the build, package@version, so
 * that whoever reads it knows which row to mend; those who read many builds skip this one.
 */
export class PackageBuildUnreadableError extends Error {
  override readonly name: string = "PackageBuildUnreadableError";

  constructor(
    readonly packageName: string,
    readonly version: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`package build ${packageName}@${version} cannot be read: its stored manifest (SysPackageBuild.Manifest) ${detail}`, options);
  }
}

/** A stored manifest, checked to be what publish stores: a JSON object with exports, schemas and processes. */
function manifestOf(packageName: string, version: number, text: string): BuildManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PackageBuildUnreadableError(packageName, version, `is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(value)) throw new PackageBuildUnreadableError(packageName, version, "is not a JSON object");
  // What every reader of a build goes into: without them it would fail later, naming nothing.
  if (!isObject(value.exports) || !Array.isArray(value.schemas) || !isObject(value.processes)) {
    throw new PackageBuildUnreadableError(packageName, version, "lacks its exports, schemas or processes");
  }
  return value as unknown as BuildManifest;
}

/**
 * A package's stored dependencies (SysPackage.Dependencies), or null when they cannot be read:
 * the text is not JSON, or not a list of package names (a row changed by hand, a bad restore).
 */
function storedDependencies(text: string): string[] | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return Array.isArray(value) && value.every((d) => typeof d === "string" && NAME.test(d)) ? (value as string[]) : null;
}

/** What listPackages and publish say of a package whose stored dependencies cannot be read, and how to mend them. */
function unreadableDependencies(packageName: string): string {
  return (
    `package ${packageName}: its stored dependencies (SysPackage.Dependencies) cannot be read (they are not a JSON list of package names); ` +
    "set them again (save the package with its dependencies, or install its package folder)"
  );
}

/** A publish that another stored first: of the same package, or of another (whose task names it was checked against). */
class PublishOvertaken extends Error {
  constructor(readonly by: "same" | "other") {
    super(`overtaken by a publish of ${by === "same" ? "the same package" : "another package"}`);
  }
}

/**
 * Packages of source code and process schemas. Save stores a schema's text (a process is checked
 * at once); Publish compiles the whole package into a new numbered build stored in the database,
 * which every worker picks up; a failed compile reports its problems and the previous build stays.
 */
export class Packages {
  constructor(
    private readonly store: StorageDriver,
    private readonly db: Kysely<PlatformTables>,
    private readonly hooks: PublishHooks = {},
  ) {}

  async ensurePackage(name: string, options: { description?: string; dependencies?: readonly string[] } = {}): Promise<string> {
    this.checkPackage(name, options);
    const now = new Date(await this.store.clockNow());
    if (options.dependencies !== undefined) {
      // The cycle check and the write in one transaction that holds off every other change of
      // dependencies: two changes at once (A gains B while B gains A) cannot both pass.
      const given = options.dependencies;
      const save = () =>
        this.store.transaction(async () => {
          await this.lockDependencies();
          await this.refuseCycle(name, given);
          return this.writePackage(name, { ...(options.description !== undefined ? { description: options.description } : {}), dependencies: given }, now);
        });
      try {
        return await save();
      } catch (error) {
        // PostgreSQL: created meanwhile by a change that takes no lock (no dependencies given); looking again finds it.
        if (!isUniqueViolation(error)) throw error;
        return save();
      }
    }
    const update = async (id: string): Promise<string> => {
      // What is not given stays as it is: a new description keeps the dependencies.
      await this.db
        .updateTable("SysPackage")
        .set({
          ModifiedOn: now,
          ...(options.description !== undefined ? { Description: options.description } : {}),
        })
        .where("Id", "=", id)
        .execute();
      return id;
    };
    const existing = await this.db.selectFrom("SysPackage").select("Id").where("Name", "=", name).executeTakeFirst();
    if (existing) return update(existing.Id);
    const id = randomUUID();
    try {
      await this.db
        .insertInto("SysPackage")
        .values({ Id: id, Name: name, Description: options.description ?? null, Dependencies: "[]", CreatedOn: now, ModifiedOn: now })
        .execute();
    } catch (error) {
      // Created meanwhile (two nodes installing their packages at once, two requests): this call
      // updates it, as it would have had it come second.
      if (!isUniqueViolation(error)) throw error;
      const created = await this.db.selectFrom("SysPackage").select("Id").where("Name", "=", name).executeTakeFirstOrThrow();
      return update(created.Id);
    }
    return id;
  }

  private checkPackage(name: string, options: { description?: unknown; dependencies?: unknown }): void {
    checkName(name, "package name");
    if (options.description !== undefined && typeof options.description !== "string") throw new PackageInputError(`a package description must be text, got ${JSON.stringify(options.description)}`);
    if (options.dependencies !== undefined && !Array.isArray(options.dependencies)) {
      throw new PackageInputError(`a package's dependencies must be a list of package names, got ${JSON.stringify(options.dependencies)}`);
    }
    for (const d of (options.dependencies as unknown[] | undefined) ?? []) {
      if (typeof d !== "string" || !NAME.test(d)) throw new PackageInputError(`dependency name ${JSON.stringify(d)} is not a package name`);
    }
  }

  /**
   * The builds a publish compiles against: the newest build of each package named, and the
   * builds those were compiled against, down the whole hierarchy (a package may use the schemas of
   * its dependencies' dependencies). A package met twice keeps the first build met: a direct
   * dependency's newest before the one an indirect path recorded.
   */
  private async hierarchy(
    packageName: string,
    direct: readonly string[],
  ): Promise<{ dependencies: CompiledPackage[]; dependencyVersions: Record<string, number> }> {
    const dependencies: CompiledPackage[] = [];
    const dependencyVersions: Record<string, number> = {};
    // Breadth first, each with the path that led to it (for the messages).
    const queue: { name: string; version: number | null; path: readonly string[] }[] = direct.map((name) => ({ name, version: null, path: [packageName] }));
    while (queue.length > 0) {
      const { name, version, path } = queue.shift()!;
      if (name === packageName) {
        throw new PackageInputError(`package ${packageName} depends on itself: ${[...path, name].join(" -> ")}; a package's dependencies may not lead back to it`);
      }
      if (Object.hasOwn(dependencyVersions, name)) continue;
      let build: PackageBuild | null;
      try {
        build = version === null ? await this.latestBuild(name) : await this.build(name, version);
      } catch (error) {
        // The publish cannot compile against a build it cannot read: refused, saying which build
        // and by which path (the message of the error names the build and what is wrong with it).
        if (!(error instanceof PackageBuildUnreadableError)) throw error;
        const via = path.length > 1 ? ` (through ${path.slice(1).join(" -> ")})` : "";
        throw new PackageInputError(`package ${packageName} depends on ${name}${via}, but ${error.message}; publish ${name} again, or mend that row`, { cause: error });
      }
      if (!build) {
        const via = path.length > 1 ? ` (through ${path.slice(1).join(" -> ")})` : "";
        throw new PackageInputError(`package ${packageName} depends on ${name}${via}, which has not been published`);
      }
      dependencies.push({ packageName: name, code: build.code, exports: build.manifest.exports, schemas: build.manifest.schemas });
      dependencyVersions[name] = build.manifest.version;
      for (const [next, v] of Object.entries(build.manifest.dependencies ?? {})) queue.push({ name: next, version: v, path: [...path, name] });
    }
    return { dependencies, dependencyVersions };
  }

  /**
   * Within a transaction, before it reads any package's dependencies: holds off every other
   * transaction that changes packages (their dependencies included) until this one ends, so that
   * the dependencies refuseCycle reads are still those stored when this one writes. On PostgreSQL
   * a table lock that conflicts with itself and with every write of SysPackage (not with reads,
   * nor with the row lock a schema's save takes); on SQLite the transaction (BEGIN IMMEDIATE)
   * already holds the one write lock of the database file, for other processes too.
   */
  private async lockDependencies(): Promise<void> {
    if (this.store.dialect === "postgres") await sql`LOCK TABLE ${sql.table("SysPackage")} IN SHARE ROW EXCLUSIVE MODE`.execute(this.db);
  }

  /**
   * Refuses dependencies that would lead back to the package, by the dependencies each package
   * declares. Another package whose stored dependencies cannot be read counts as depending on
   * nothing: refusing here would keep every package from being changed, the damaged one included
   * (setting its dependencies again is how it is mended, and then its own are checked), and a
   * cycle through it is refused anyway when it is published, which it cannot be until mended.
   * Called in the transaction that writes them, after lockDependencies.
   */
  private async refuseCycle(name: string, dependencies: readonly string[]): Promise<void> {
    const declared = new Map(
      (await this.db.selectFrom("SysPackage").select(["Name", "Dependencies"]).execute()).map((r) => [r.Name, storedDependencies(r.Dependencies) ?? []]),
    );
    declared.set(name, [...dependencies]);
    const visit = (at: string, path: readonly string[]): void => {
      for (const next of declared.get(at) ?? []) {
        if (next === name) {
          throw new PackageInputError(`package ${name} cannot depend on ${dependencies.join(", ")}: ${[...path, next].join(" -> ")} is a cycle; a package's dependencies may not lead back to it`);
        }
        if (!path.includes(next)) visit(next, [...path, next]);
      }
    };
    visit(name, [name]);
  }

  /**
   * Every package. One whose stored dependencies cannot be read is listed with none and with
   * dependenciesError saying so: the list stays usable, and that package is where it is mended.
   */
  async listPackages(): Promise<{ name: string; description: string | null; dependencies: string[]; dependenciesError?: string; version: number | null }[]> {
    const rows = await this.db.selectFrom("SysPackage").select(["Id", "Name", "Description", "Dependencies"]).orderBy("Name").execute();
    const versions = await this.latestVersions();
    return rows.map((r) => {
      const dependencies = storedDependencies(r.Dependencies);
      return {
        name: r.Name,
        description: r.Description,
        dependencies: dependencies ?? [],
        ...(dependencies === null ? { dependenciesError: unreadableDependencies(r.Name) } : {}),
        version: versions.get(r.Name) ?? null,
      };
    });
  }

  private async packageId(name: string): Promise<string> {
    const row = await this.db.selectFrom("SysPackage").select("Id").where("Name", "=", name).executeTakeFirst();
    if (!row) throw new PackageNotFoundError(name);
    return row.Id;
  }

  /**
   * Stores a schema's text. A process definition is parsed first: unsupported content is refused.
   * A name that differs from another schema of the package only in case is refused.
   */
  async saveSchema(packageName: string, schema: SchemaInput, byUserId: string | null = null): Promise<void> {
    await checkSchema(schema);
    const packageId = await this.packageId(packageName);
    const now = new Date(await this.store.clockNow());
    const store = () => this.store.transaction(() => this.storeSchema(packageName, packageId, schema, now, byUserId));
    try {
      await store();
    } catch (error) {
      // PostgreSQL: another save stored the name since this one looked. Looking again finds it,
      // and says which package has it, or updates it when it is this package's.
      if (!isUniqueViolation(error)) throw error;
      await store();
    }
  }

  /** Within a transaction: stores one checked schema of the package. */
  private async storeSchema(packageName: string, packageId: string, schema: SchemaInput, now: Date, byUserId: string | null): Promise<void> {
    // One change of a package's schemas at a time (PostgreSQL; SQLite has one writer): the case
    // check below sees the other's name.
    if (this.store.dialect === "postgres") await this.db.selectFrom("SysPackage").select("Id").where("Id", "=", packageId).forUpdate().execute();
    const existing = await this.db.selectFrom("SysSchema").select(["Id", "PackageId"]).where("Name", "=", schema.name).execute();
    const elsewhere = existing.find((e) => e.PackageId !== packageId);
    if (elsewhere) throw new PackageInputError(`a schema named ${schema.name} already exists in another package`);
    const alike = await this.db
      .selectFrom("SysSchema")
      .select("Name")
      .where("PackageId", "=", packageId)
      .where(sql<string>`lower(${sql.ref("Name")})`, "=", schema.name.toLowerCase())
      .where("Name", "<>", schema.name)
      .executeTakeFirst();
    if (alike) throw caseClash(packageName, schema.name, alike.Name);
    if (existing[0]) {
      await this.db
        .updateTable("SysSchema")
        .set({ Kind: schema.kind, Caption: schema.caption ?? schema.name, Body: schema.body, ModifiedOn: now, ModifiedById: byUserId })
        .where("Id", "=", existing[0].Id)
        .execute();
    } else {
      await this.db
        .insertInto("SysSchema")
        .values({ Id: randomUUID(), PackageId: packageId, Name: schema.name, Kind: schema.kind, Caption: schema.caption ?? schema.name, Body: schema.body, ModifiedOn: now, ModifiedById: byUserId })
        .execute();
    }
  }

  /** Deletes a saved schema of the package (its published builds keep theirs); false when it has none of that name. */
  async deleteSchema(packageName: string, schemaName: string): Promise<boolean> {
    const packageId = await this.packageId(packageName);
    const deleted = await this.db.deleteFrom("SysSchema").where("PackageId", "=", packageId).where("Name", "=", schemaName).executeTakeFirst();
    return Number(deleted.numDeletedRows) > 0;
  }

  async getSchemas(packageName: string): Promise<SchemaRecord[]> {
    const packageId = await this.packageId(packageName);
    const rows = await this.db.selectFrom("SysSchema").selectAll().where("PackageId", "=", packageId).orderBy("Name").execute();
    return rows.map((r) => ({
      name: r.Name,
      kind: r.Kind as SchemaKind,
      caption: r.Caption ?? r.Name,
      body: r.Body,
      modifiedOn: r.ModifiedOn === null ? null : new Date(r.ModifiedOn as number | Date),
    }));
  }

  /**
   * Reads and checks a package folder whole, saving nothing: the descriptor's fields, every schema
   * file (which must lie inside the folder, links resolved) and every schema's name, kind, size
   * and diagram.
   */
  async readFolder(folder: string): Promise<PackageFolder> {
    const dir = resolve(folder);
    const { descriptor, text: descriptorText } = await readDescriptorFile(dir);
    const realDir = await realpath(dir);
    const schemas: Required<SchemaInput>[] = [];
    for (const s of descriptor.schemas) {
      const file = resolve(dir, s.file);
      if (!file.startsWith(dir + sep)) throw new PackageInputError(`schema file ${s.file} lies outside the package folder`);
      let body: string;
      try {
        // The file itself, links followed: a link to a file outside the folder is refused.
        const real = await realpath(file);
        if (!real.startsWith(realDir + sep)) throw new PackageInputError(`schema file ${s.file} lies outside the package folder (it leads to ${real})`);
        body = await readFile(real, "utf8");
      } catch (error) {
        if (error instanceof PackageInputError) throw error;
        throw new PackageInputError(`cannot read schema file ${s.file}: ${(error as Error).message}`, { cause: error });
      }
      const schema = { name: s.name, kind: s.kind, caption: s.caption ?? s.name, body };
      try {
        await checkSchema(schema);
      } catch (error) {
        throw new PackageInputError(`schema ${s.name} (file ${s.file}): ${(error as Error).message}`, { cause: error });
      }
      schemas.push(schema);
    }
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([descriptorText, ...schemas.map((s) => s.body)]))
      .digest("hex");
    return { descriptor, schemas, fingerprint };
  }

  /**
   * Saves a package folder (creating the package) in one transaction, checked whole first: the
   * package's schemas become exactly the folder's (those it does not list are deleted), and a
   * failure leaves the package as it was. Does not publish.
   */
  async importFolder(folder: string | PackageFolder): Promise<PackageDescriptor> {
    const read = typeof folder === "string" ? await this.readFolder(folder) : folder;
    const { descriptor, schemas } = read;
    const now = new Date(await this.store.clockNow());
    const save = () =>
      this.store.transaction(async () => {
        const dependencies = descriptor.dependencies ?? [];
        // First in the transaction (see lockDependencies): the check and the write hold together.
        await this.lockDependencies();
        await this.refuseCycle(descriptor.name, dependencies);
        const packageId = await this.writePackage(descriptor.name, { ...(descriptor.description !== undefined ? { description: descriptor.description } : {}), dependencies }, now);
        const names = schemas.map((s) => s.name);
        const gone = this.db.deleteFrom("SysSchema").where("PackageId", "=", packageId);
        await (names.length > 0 ? gone.where("Name", "not in", names) : gone).execute();
        for (const schema of schemas) await this.storeSchema(descriptor.name, packageId, schema, now, null);
      });
    try {
      await save();
    } catch (error) {
      // PostgreSQL: another import or save stored the package or a name since this one looked; looking again finds it.
      if (!isUniqueViolation(error)) throw error;
      await save();
    }
    return descriptor;
  }

  /** Within a transaction: creates the package, or updates what is given of it. */
  private async writePackage(name: string, options: { description?: string; dependencies: readonly string[] }, now: Date): Promise<string> {
    const existing = await this.db.selectFrom("SysPackage").select("Id").where("Name", "=", name).executeTakeFirst();
    if (existing) {
      await this.db
        .updateTable("SysPackage")
        .set({ ModifiedOn: now, Dependencies: JSON.stringify(options.dependencies), ...(options.description !== undefined ? { Description: options.description } : {}) })
        .where("Id", "=", existing.Id)
        .execute();
      return existing.Id;
    }
    const id = randomUUID();
    await this.db
      .insertInto("SysPackage")
      .values({ Id: id, Name: name, Description: options.description ?? null, Dependencies: JSON.stringify(options.dependencies), CreatedOn: now, ModifiedOn: now })
      .execute();
    return id;
  }

  /**
   * Compiles the package's saved schemas into a new build; throws PackageCompileError, keeping the
   * previous build. `schedules` replaces the recurring tasks the package declares; without it the
   * new build declares those of the previous one. A schedule that does not fit the build (an
   * unknown task class, a bad cron expression...) throws PackageScheduleError, keeping the previous build.
   * `folder` records the fingerprint of the package folder the saved schemas came from; without
   * it the new build keeps the previous one's.
   */
  async publish(packageName: string, byUserId: string | null = null, options: PublishOptions = {}): Promise<{ version: number }> {
    // Two publishes of one package that overlap: the one that stores second compiled what it read
    // before the other's build, which may be older. It starts again from what is saved now, so
    // that the newest build is always compiled from the newest snapshot.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.publishOnce(packageName, byUserId, options);
      } catch (error) {
        if (!(error instanceof PublishOvertaken)) throw error;
        if (attempt >= MAX_PUBLISH_ATTEMPTS) {
          throw new PackageInputError(
            error.by === "same"
              ? `package ${packageName} was published by someone else ${MAX_PUBLISH_ATTEMPTS} times while this publish compiled it; publish again`
              : `other packages were published ${MAX_PUBLISH_ATTEMPTS} times while this publish of ${packageName} checked its task names against them; publish again`,
          );
        }
      }
    }
  }

  private async publishOnce(packageName: string, byUserId: string | null, options: PublishOptions): Promise<{ version: number }> {
    const packageId = await this.packageId(packageName);
    const row = await this.db.selectFrom("SysPackage").select("Dependencies").where("Id", "=", packageId).executeTakeFirstOrThrow();
    // Refused rather than published with no dependencies: what the package uses of them would
    // either fail to compile, naming none of this, or compile into a build that records none and
    // runs against whatever it finds. Saying so lets the operator set them again and publish.
    const declared = storedDependencies(row.Dependencies);
    if (declared === null) throw new PackageInputError(`${unreadableDependencies(packageName)}, then publish`);
    // The newest build's version, and its manifest unless it cannot be read (a row changed by
    // hand): then what it declared (its schedules, the folder it came from) is unknown, and the
    // new build, which replaces it, starts without them rather than the package staying stuck.
    const previousVersion = (await this.latestVersions()).get(packageName) ?? 0;
    let previous: BuildManifest | null = null;
    if (previousVersion > 0) {
      try {
        previous = (await this.build(packageName, previousVersion))?.manifest ?? null;
      } catch (error) {
        if (!(error instanceof PackageBuildUnreadableError)) throw error;
      }
    }
    const schedules = options.schedules !== undefined ? parsePackageSchedules(packageName, options.schedules) : [...(previous?.schedules ?? [])];
    const schemas = await this.getSchemas(packageName);
    const sources = schemas.filter((s) => s.kind === "source").map((s) => ({ name: s.name, source: s.body }));
    const processes: Record<string, string> = {};
    const scripts: ProcessScript[] = [];
    const conditions: ProcessCondition[] = [];
    for (const s of schemas.filter((x) => x.kind === "process")) {
      const definition: ProcessDefinition = await parseProcess(s.body);
      processes[definition.code] = s.body;
      for (const element of definition.elements.values()) {
        if (element.kind === "scriptTask") {
          scripts.push({ processCode: definition.code, elementId: element.id, usings: element.usings ?? [], body: element.script ?? "" });
        }
        for (const flow of element.outgoing) {
          if (flow.condition !== undefined) {
            conditions.push({ processCode: definition.code, flowId: flow.id, usings: element.usings ?? [], expression: flow.condition });
          }
        }
      }
    }
    const { dependencies, dependencyVersions } = await this.hierarchy(packageName, declared);
    const compiled = await compilePackage({ packageName, schemas: sources, scripts, conditions, dependencies });
    // The check compares the build with the other packages' newest builds (task names): read
    // before it, and again under the lock below, a publish of another package in between is seen.
    const others = await this.otherVersions(packageName);
    try {
      await this.hooks.check?.({ packageName, compiled, dependencies: dependencyVersions, schedules });
    } catch (error) {
      // A schedule kept from the previous build that no longer fits: say where it is declared.
      if (options.schedules !== undefined || !(error instanceof PackageScheduleError) || error.scheduleName === null || previous === null) throw error;
      const prefix = `package ${packageName}: schedule ${JSON.stringify(error.scheduleName)}: `;
      const detail = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
      const where = previous.folder !== undefined ? "in the package folder's underway-package.json, then start with the folder again" : "by publishing with the package's schedules";
      throw new PackageScheduleError(packageName, error.scheduleName, `${detail}; the schedule is kept from build ${previous.version}: change or remove it ${where}`);
    }
    const folder = options.folder ?? previous?.folder;
    const stored = await this.store.transaction(async () => {
      // One publish stores at a time (SQLite's write transaction holds the whole file); readers of
      // the builds are not held up.
      if (this.store.dialect === "postgres") await sql`LOCK TABLE ${sql.table("SysPackageBuild")} IN SHARE ROW EXCLUSIVE MODE`.execute(this.db);
      if ((await this.otherVersions(packageName)) !== others) throw new PublishOvertaken("other");
      const latest = await this.db
        .selectFrom("SysPackageBuild")
        .select(sql<number>`max("Version")`.as("v"))
        .where("PackageId", "=", packageId)
        .executeTakeFirst();
      const newest = Number(latest?.v ?? 0);
      if (newest !== previousVersion) throw new PublishOvertaken("same");
      const version = newest + 1;
      const manifest: BuildManifest = {
        packageName,
        version,
        exports: compiled.exports,
        schemas: compiled.schemas,
        processes,
        schedules,
        dependencies: dependencyVersions,
        ...(folder !== undefined ? { folder } : {}),
      };
      try {
        await this.db
          .insertInto("SysPackageBuild")
          .values({
            Id: randomUUID(),
            PackageId: packageId,
            Version: version,
            Code: compiled.code,
            Manifest: JSON.stringify(manifest),
            CreatedOn: new Date(await this.store.clockNow()),
            CreatedById: byUserId,
          })
          .execute();
      } catch (error) {
        // PostgreSQL: another publish's transaction stored this version since the look above.
        if (isUniqueViolation(error)) throw new PublishOvertaken("same");
        throw error;
      }
      return manifest;
    });
    await this.hooks.published?.({ manifest: stored, previous });
    return { version: stored.version };
  }

  /**
   * The names of the schedules the package's builds before `version` declared: what a build that
   * no longer declares one of them must delete, even when a build in between was stored without
   * its schedules being applied. Reads only each manifest's schedules, not its code or diagrams.
   */
  async scheduleNamesDeclaredBefore(packageName: string, version: number): Promise<string[]> {
    // A manifest that is not JSON (a row changed by hand) declares no schedule that can be known:
    // it is passed over, rather than keeping every later build from defining its own. SQLite
    // tells it in the query; PostgreSQL 15 cannot, and its cast fails the query, so then the
    // manifests are read one at a time instead, which only a damaged row makes happen. Callers
    // call this outside any transaction, which the failed statement would have broken.
    let texts: (string | null)[];
    if (this.store.dialect === "postgres") {
      try {
        texts = await this.earlierSchedules(packageName, version, sql<string | null>`(b."Manifest"::json -> 'schedules')::text`);
      } catch {
        texts = await this.earlierSchedulesOneByOne(packageName, version);
      }
    } else {
      texts = await this.earlierSchedules(packageName, version, sql<string | null>`case when json_valid(b."Manifest") then json_extract(b."Manifest", '$.schedules') end`);
    }
    const names = new Set<string>();
    for (const text of texts) {
      let schedules: unknown = null;
      try {
        schedules = text === null ? null : JSON.parse(text);
      } catch {
        // Not JSON: as above, no schedule that can be known.
      }
      if (!Array.isArray(schedules)) continue;
      for (const s of schedules as unknown[]) {
        const name = (s as { name?: unknown } | null)?.name;
        if (typeof name === "string") names.add(name);
      }
    }
    return [...names];
  }

  /** The "schedules" of each of the package's builds before `version`, as JSON text (null where it has none). */
  private async earlierSchedules(packageName: string, version: number, schedules: RawBuilder<string | null>): Promise<(string | null)[]> {
    const rows = await this.db
      .selectFrom("SysPackageBuild as b")
      .innerJoin("SysPackage as p", "p.Id", "b.PackageId")
      .select(schedules.as("s"))
      .where("p.Name", "=", packageName)
      .where("b.Version", "<", version)
      .execute();
    return rows.map((r) => r.s);
  }

  /** As earlierSchedules, reading each whole manifest in turn (one at a time: they hold the diagrams). */
  private async earlierSchedulesOneByOne(packageName: string, version: number): Promise<(string | null)[]> {
    const versions = await this.db
      .selectFrom("SysPackageBuild as b")
      .innerJoin("SysPackage as p", "p.Id", "b.PackageId")
      .select("b.Version")
      .where("p.Name", "=", packageName)
      .where("b.Version", "<", version)
      .execute();
    const texts: (string | null)[] = [];
    for (const { Version } of versions) {
      let schedules: unknown;
      try {
        schedules = (await this.build(packageName, Number(Version)))?.manifest.schedules;
      } catch (error) {
        if (error instanceof PackageBuildUnreadableError) continue;
        throw error;
      }
      texts.push(schedules === undefined ? null : JSON.stringify(schedules));
    }
    return texts;
  }

  /** The newest build of every other published package, as text to compare: "name@version ...". */
  private async otherVersions(packageName: string): Promise<string> {
    const versions = [...(await this.latestVersions())].filter(([name]) => name !== packageName);
    return versions.map(([name, version]) => `${name}@${version}`).join(" ");
  }

  /** The newest build's version of every published package, in the packages' name order. */
  async latestVersions(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom("SysPackageBuild as b")
      .innerJoin("SysPackage as p", "p.Id", "b.PackageId")
      .select(["p.Name", sql<number>`max(b."Version")`.as("v")])
      .groupBy("p.Name")
      // In name order on every store: where two builds could answer one lookup, the same one does.
      .orderBy("p.Name")
      .execute();
    return new Map(rows.map((r) => [r.Name, Number(r.v)]));
  }

  async build(packageName: string, version: number): Promise<PackageBuild | null> {
    const row = await this.db
      .selectFrom("SysPackageBuild as b")
      .innerJoin("SysPackage as p", "p.Id", "b.PackageId")
      .select(["b.Code", "b.Manifest"])
      .where("p.Name", "=", packageName)
      .where("b.Version", "=", version)
      .executeTakeFirst();
    return row ? { code: row.Code, manifest: manifestOf(packageName, version, row.Manifest) } : null;
  }

  async latestBuild(packageName: string): Promise<PackageBuild | null> {
    const version = (await this.latestVersions()).get(packageName);
    return version === undefined ? null : this.build(packageName, version);
  }
}
