import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import type { Kysely } from "kysely";
import { sql } from "../db/kysely-module.ts";
import { isUniqueViolation } from "../db/values.ts";
import type { StorageDriver } from "../../store/driver.ts";
import type { PlatformTables } from "../db/tables.ts";
import { parseProcess, type ProcessDefinition } from "../processes/bpmn/index.ts";
import { compilePackage, type CompiledPackage, type ProcessCondition, type ProcessScript, type SourceSchema } from "./compiler/index.ts";
import { isValidName, PLATFORM_MODULE } from "./compiler/names.ts";
import { PackageInputError, PackageNotFoundError } from "./errors.ts";
import { parsePackageSchedules, type PackageSchedule } from "./schedules.ts";

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
    checkName(name, "package name");
    for (const d of options.dependencies ?? []) if (!NAME.test(d)) throw new PackageInputError(`dependency name ${JSON.stringify(d)} is not a package name`);
    if (options.dependencies !== undefined) await this.refuseCycle(name, options.dependencies);
    const now = new Date(await this.store.clockNow());
    const dependencies = JSON.stringify(options.dependencies ?? []);
    const update = async (id: string): Promise<string> => {
      // What is not given stays as it is: a new description keeps the dependencies.
      await this.db
        .updateTable("SysPackage")
        .set({
          ModifiedOn: now,
          ...(options.dependencies !== undefined ? { Dependencies: dependencies } : {}),
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
        .values({ Id: id, Name: name, Description: options.description ?? null, Dependencies: dependencies, CreatedOn: now, ModifiedOn: now })
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
      const build = version === null ? await this.latestBuild(name) : await this.build(name, version);
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

  /** Refuses dependencies that would lead back to the package, by the dependencies each package declares. */
  private async refuseCycle(name: string, dependencies: readonly string[]): Promise<void> {
    const declared = new Map(
      (await this.db.selectFrom("SysPackage").select(["Name", "Dependencies"]).execute()).map((r) => [r.Name, JSON.parse(r.Dependencies) as string[]]),
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

  async listPackages(): Promise<{ name: string; description: string | null; dependencies: string[]; version: number | null }[]> {
    const rows = await this.db.selectFrom("SysPackage").select(["Id", "Name", "Description", "Dependencies"]).orderBy("Name").execute();
    const versions = await this.latestVersions();
    return rows.map((r) => ({
      name: r.Name,
      description: r.Description,
      dependencies: JSON.parse(r.Dependencies) as string[],
      version: versions.get(r.Name) ?? null,
    }));
  }

  private async packageId(name: string): Promise<string> {
    const row = await this.db.selectFrom("SysPackage").select("Id").where("Name", "=", name).executeTakeFirst();
    if (!row) throw new PackageNotFoundError(name);
    return row.Id;
  }

  /** Stores a schema's text. A process definition is parsed first: unsupported content is refused. */
  async saveSchema(packageName: string, schema: SchemaInput, byUserId: string | null = null): Promise<void> {
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
    const packageId = await this.packageId(packageName);
    const now = new Date(await this.store.clockNow());
    try {
      await this.storeSchema(packageId, schema, now, byUserId);
    } catch (error) {
      // PostgreSQL: another save stored the name since this one looked. Looking again finds it,
      // and says which package has it, or updates it when it is this package's.
      if (!isUniqueViolation(error)) throw error;
      await this.storeSchema(packageId, schema, now, byUserId);
    }
  }

  private async storeSchema(packageId: string, schema: SchemaInput, now: Date, byUserId: string | null): Promise<void> {
    await this.store.transaction(async () => {
      const existing = await this.db.selectFrom("SysSchema").select(["Id", "PackageId"]).where("Name", "=", schema.name).execute();
      const elsewhere = existing.find((e) => e.PackageId !== packageId);
      if (elsewhere) throw new PackageInputError(`a schema named ${schema.name} already exists in another package`);
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
    });
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

  /** Saves every schema of a package folder (creating the package); does not publish. */
  async importFolder(folder: string): Promise<PackageDescriptor> {
    const dir = resolve(folder);
    let descriptor: PackageDescriptor;
    try {
      descriptor = JSON.parse(await readFile(join(dir, "underway-package.json"), "utf8")) as PackageDescriptor;
    } catch (error) {
      throw new PackageInputError(`cannot read the package descriptor ${join(dir, "underway-package.json")}: ${(error as Error).message}`, { cause: error });
    }
    if (!descriptor || typeof descriptor.name !== "string" || !Array.isArray(descriptor.schemas)) {
      throw new PackageInputError(`${join(dir, "underway-package.json")} must have a name and a list of schemas`);
    }
    // Checked before anything is saved; the code they name is checked when publishing.
    const schedules = parsePackageSchedules(descriptor.name, descriptor.schedules);
    // Every file found and read before anything is saved: a bad path leaves no half-installed package.
    const bodies: string[] = [];
    for (const s of descriptor.schemas) {
      const file = typeof s?.file === "string" ? resolve(dir, s.file) : "";
      if (!file.startsWith(dir + sep)) throw new PackageInputError(`schema file ${String(s?.file)} lies outside the package folder`);
      try {
        bodies.push(await readFile(file, "utf8"));
      } catch (error) {
        throw new PackageInputError(`cannot read schema file ${s.file}: ${(error as Error).message}`, { cause: error });
      }
    }
    await this.ensurePackage(descriptor.name, {
      ...(descriptor.description !== undefined ? { description: descriptor.description } : {}),
      dependencies: descriptor.dependencies ?? [],
    });
    for (const [i, s] of descriptor.schemas.entries()) {
      await this.saveSchema(descriptor.name, { name: s.name, kind: s.kind, caption: s.caption ?? s.name, body: bodies[i]! });
    }
    return { ...descriptor, schedules };
  }

  /**
   * Compiles the package's saved schemas into a new build; throws PackageCompileError, keeping the
   * previous build. `schedules` replaces the recurring tasks the package declares; without it the
   * new build declares those of the previous one. A schedule that does not fit the build (an
   * unknown task class, a bad cron expression...) throws PackageScheduleError, keeping the previous build.
   */
  async publish(packageName: string, byUserId: string | null = null, options: { readonly schedules?: readonly unknown[] } = {}): Promise<{ version: number }> {
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

  private async publishOnce(packageName: string, byUserId: string | null, options: { readonly schedules?: readonly unknown[] }): Promise<{ version: number }> {
    const packageId = await this.packageId(packageName);
    const row = await this.db.selectFrom("SysPackage").select("Dependencies").where("Id", "=", packageId).executeTakeFirstOrThrow();
    const previous = (await this.latestBuild(packageName))?.manifest ?? null;
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
    const { dependencies, dependencyVersions } = await this.hierarchy(packageName, JSON.parse(row.Dependencies) as string[]);
    const compiled = await compilePackage({ packageName, schemas: sources, scripts, conditions, dependencies });
    // The check compares the build with the other packages' newest builds (task names): read
    // before it, and again under the lock below, a publish of another package in between is seen.
    const others = await this.otherVersions(packageName);
    await this.hooks.check?.({ packageName, compiled, dependencies: dependencyVersions, schedules });
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
      if (newest !== (previous?.version ?? 0)) throw new PublishOvertaken("same");
      const version = newest + 1;
      const manifest: BuildManifest = { packageName, version, exports: compiled.exports, schemas: compiled.schemas, processes, schedules, dependencies: dependencyVersions };
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
    const schedules =
      this.store.dialect === "postgres" ? sql<string | null>`(b."Manifest"::json -> 'schedules')::text` : sql<string | null>`json_extract(b."Manifest", '$.schedules')`;
    const rows = await this.db
      .selectFrom("SysPackageBuild as b")
      .innerJoin("SysPackage as p", "p.Id", "b.PackageId")
      .select(schedules.as("s"))
      .where("p.Name", "=", packageName)
      .where("b.Version", "<", version)
      .execute();
    const names = new Set<string>();
    for (const row of rows) for (const s of row.s === null ? [] : (JSON.parse(row.s) as PackageSchedule[])) names.add(s.name);
    return [...names];
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
    return row ? { code: row.Code, manifest: JSON.parse(row.Manifest) as BuildManifest } : null;
  }

  async latestBuild(packageName: string): Promise<PackageBuild | null> {
    const version = (await this.latestVersions()).get(packageName);
    return version === undefined ? null : this.build(packageName, version);
  }
}
