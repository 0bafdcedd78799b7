import { DYNAMIC_TASK_CLASS, taskNameOf, type AnyTaskClass } from "../../tasks/registry.ts";
import { parseProcess, type ProcessDefinition } from "../processes/bpmn/index.ts";
import { loadPackage, type LoadedPackage } from "./compiler/index.ts";
import type { Packages, PackageBuild } from "./packages.ts";

export interface LoadedBuild {
  readonly packageName: string;
  readonly version: number;
  readonly loaded: LoadedPackage;
  readonly build: PackageBuild;
}

export interface ResolvedProcess {
  readonly packageName: string;
  readonly version: number;
  readonly definition: ProcessDefinition;
  readonly build: LoadedBuild;
}

/**
 * Keeps the published builds loaded in this process. It looks for newer builds at most every
 * `refreshMs` (and at once when asked), so a publish on any node reaches every worker without a
 * restart; a process instance keeps the build it started with.
 */
export class PackageLoader {
  private readonly loaded = new Map<string, LoadedBuild>(); // `${package}@${version}`
  private latest = new Map<string, number>();
  private checkedAt = 0;
  private checking: Promise<void> | null = null;
  private readonly definitions = new Map<string, ProcessDefinition>();

  constructor(
    private readonly packages: Packages,
    private readonly platformApi: () => Promise<Record<string, unknown>>,
    private readonly refreshMs = 1_000,
  ) {}

  /** Looks for newer builds now (or when the last look is older than refreshMs). */
  async refresh(force = false): Promise<void> {
    if (!force && Date.now() - this.checkedAt < this.refreshMs) return;
    if (!this.checking) {
      this.checking = (async () => {
        this.latest = await this.packages.latestVersions();
        this.checkedAt = Date.now();
      })().finally(() => {
        this.checking = null;
      });
    }
    await this.checking;
  }

  /** A build, loaded once per process. */
  async load(packageName: string, version: number, seen: readonly string[] = []): Promise<LoadedBuild> {
    const key = `${packageName}@${version}`;
    const known = this.loaded.get(key);
    if (known) return known;
    if (seen.includes(packageName)) throw new Error(`packages depend on each other in a cycle: ${[...seen, packageName].join(" -> ")}`);
    const build = await this.packages.build(packageName, version);
    if (!build) throw new Error(`package ${packageName} has no build ${version}`);
    const dependencies: LoadedPackage[] = [];
    const dependencyNames = (await this.packages.listPackages()).find((p) => p.name === packageName)?.dependencies ?? [];
    await this.refresh();
    for (const name of dependencyNames) {
      const v = this.latest.get(name);
      if (v === undefined) throw new Error(`package ${packageName} depends on ${name}, which has no build`);
      dependencies.push((await this.load(name, v, [...seen, packageName])).loaded);
    }
    const loaded = loadPackage(
      { packageName, code: build.code, exports: build.manifest.exports, schemas: build.manifest.schemas },
      await this.platformApi(),
      dependencies,
    );
    // Classes of a build are found by name through the loader, never kept by the task registry.
    for (const module of Object.values(loaded.modules)) {
      for (const value of Object.values(module)) {
        if (typeof value === "function" && typeof (value as { prototype?: { run?: unknown } }).prototype?.run === "function") {
          Object.defineProperty(value, DYNAMIC_TASK_CLASS, { value: { packageName, version }, enumerable: false });
        }
      }
    }
    const result = { packageName, version, loaded, build };
    this.loaded.set(key, result);
    return result;
  }

  /** The task class of this name in the newest builds, if any. */
  async resolveTaskClass(name: string): Promise<AnyTaskClass | undefined> {
    await this.refresh();
    for (const [packageName, version] of this.latest) {
      const build = await this.load(packageName, version);
      for (const module of Object.values(build.loaded.modules)) {
        for (const value of Object.values(module)) {
          if (typeof value !== "function" || typeof (value as { prototype?: { run?: unknown } }).prototype?.run !== "function") continue;
          try {
            if (taskNameOf(value as AnyTaskClass) === name) return value as AnyTaskClass;
          } catch {
            // not a nameable class
          }
        }
      }
    }
    return undefined;
  }

  /** The newest published definition of a process code. */
  async findProcess(code: string): Promise<ResolvedProcess | undefined> {
    await this.refresh(true);
    for (const [packageName, version] of this.latest) {
      const build = await this.load(packageName, version);
      if (build.build.manifest.processes[code] !== undefined) return this.process(build, code);
    }
    return undefined;
  }

  /** A process of a given build (an instance keeps the build it started with). */
  async processOfBuild(packageName: string, version: number, code: string): Promise<ResolvedProcess> {
    const build = await this.load(packageName, version);
    if (build.build.manifest.processes[code] === undefined) throw new Error(`build ${version} of ${packageName} has no process ${code}`);
    return this.process(build, code);
  }

  private async process(build: LoadedBuild, code: string): Promise<ResolvedProcess> {
    const key = `${build.packageName}@${build.version}/${code}`;
    let definition = this.definitions.get(key);
    if (!definition) {
      definition = await parseProcess(build.build.manifest.processes[code] as string);
      this.definitions.set(key, definition);
    }
    return { packageName: build.packageName, version: build.version, definition, build };
  }
}
