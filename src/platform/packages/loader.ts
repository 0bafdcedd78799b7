import { DYNAMIC_TASK_CLASS, type AnyTaskClass } from "../../tasks/registry.ts";
import { parseProcess, type ProcessDefinition } from "../processes/bpmn/index.ts";
import { LOAD_LIMIT_MS, loadPackage, PackageLoadTimeoutError, type CompiledPackage, type LoadedPackage } from "./compiler/index.ts";
import type { Packages, PackageBuild } from "./packages.ts";
import { declaringPackage, packageTaskClasses } from "./task-names.ts";

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
 *
 * Every load of a build's code has a time limit (`loadLimitMs`, LOAD_LIMIT_MS as at Publish):
 * top-level code that does not finish is stopped and the load throws PackageLoadTimeoutError,
 * naming the package and the build. That build is not tried again in this process: each later
 * load of it (or of a build that needs it) throws the same error at once, rather than holding the
 * thread for the limit again. Whoever loads it meets the error as it meets code that throws: the
 * platform's start logs it and goes on without that package's tasks.
 */
export class PackageLoader {
  private readonly loaded = new Map<string, LoadedBuild>(); // `${package}@${version}`
  /** Builds whose code was stopped at the limit, by `${package}@${version}`. */
  private readonly stopped = new Map<string, PackageLoadTimeoutError>();
  private latest = new Map<string, number>();
  private checkedAt = 0;
  private checking: Promise<void> | null = null;
  private readonly definitions = new Map<string, ProcessDefinition>();

  constructor(
    private readonly packages: Packages,
    private readonly platformApi: () => Promise<Record<string, unknown>>,
    private readonly refreshMs = 1_000,
    private readonly loadLimitMs = LOAD_LIMIT_MS,
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
    const stopped = this.stopped.get(key);
    if (stopped) throw stopped;
    // Builds, not names: A v2 may use B v1, which was compiled against A v1 (publish refuses a
    // cycle of names, but a store may hold builds from before).
    if (seen.includes(key)) throw new Error(`package builds depend on each other in a cycle: ${[...seen, key].join(" -> ")}`);
    const build = await this.packages.build(packageName, version);
    if (!build) throw new Error(`package ${packageName} has no build ${version}`);
    // The dependency builds it was compiled against; builds older than that record run with the newest.
    const dependencies = build.manifest.dependencies ?? (await this.newestOf((await this.packages.listPackages()).find((p) => p.name === packageName)?.dependencies ?? [], packageName));
    const loaded = await this.evaluate(
      { packageName, code: build.code, exports: build.manifest.exports, schemas: build.manifest.schemas },
      version,
      dependencies,
      [...seen, key],
    );
    const result = { packageName, version, loaded, build };
    this.loaded.set(key, result);
    return result;
  }

  /**
   * A compiled package that is not stored yet (Publish checks its schedules against it), with the
   * newest builds of its dependencies; not kept.
   */
  loadCompiled(compiled: CompiledPackage, dependencies: Readonly<Record<string, number>>): Promise<LoadedPackage> {
    return this.evaluate(compiled, 0, dependencies, []);
  }

  /** The newest build of each named package. */
  private async newestOf(names: readonly string[], packageName: string): Promise<Record<string, number>> {
    await this.refresh();
    const versions: Record<string, number> = {};
    for (const name of names) {
      const v = this.latest.get(name);
      if (v === undefined) throw new Error(`package ${packageName} depends on ${name}, which has no build`);
      versions[name] = v;
    }
    return versions;
  }

  private async evaluate(compiled: CompiledPackage, version: number, dependencyVersions: Readonly<Record<string, number>>, seen: readonly string[]): Promise<LoadedPackage> {
    const { packageName } = compiled;
    const dependencies: LoadedPackage[] = [];
    for (const [name, v] of Object.entries(dependencyVersions)) {
      dependencies.push((await this.load(name, v, seen)).loaded);
    }
    const platformApi = await this.platformApi();
    // Looked at again here, with nothing awaited between this and its code running: of two loads
    // of a build that began together, the second fails at once should the first be stopped,
    // rather than holding the thread for the limit again.
    const key = version > 0 ? `${packageName}@${version}` : null;
    const stopped = key === null ? undefined : this.stopped.get(key);
    if (stopped) throw stopped;
    let loaded: LoadedPackage;
    try {
      loaded = loadPackage(compiled, platformApi, dependencies, { limitMs: this.loadLimitMs, ...(version > 0 ? { version } : {}) });
    } catch (error) {
      if (key !== null && error instanceof PackageLoadTimeoutError) this.stopped.set(key, error);
      throw error;
    }
    // Classes of a build are found by name through the loader, never kept by the task registry.
    // A class a schema re-exports from a dependency is already marked, as the dependency's.
    for (const { taskClass } of packageTaskClasses(loaded)) {
      if (!Object.hasOwn(taskClass, DYNAMIC_TASK_CLASS)) Object.defineProperty(taskClass, DYNAMIC_TASK_CLASS, { value: { packageName, version }, enumerable: false });
    }
    return loaded;
  }

  /** The task class of this name in the newest builds, if any. */
  async resolveTaskClass(name: string): Promise<AnyTaskClass | undefined> {
    await this.refresh();
    // The class of the build that declares it: a re-export of an older dependency build is not it.
    return this.inNewestBuilds((build) => {
      const found = taskClassesByName(build.loaded).get(name);
      return found && declaringPackage(found) === build.packageName ? found : undefined;
    });
  }

  /** The newest builds of every package but one, loaded now; those that fail to load are left out. */
  async otherNewestBuilds(packageName: string): Promise<LoadedPackage[]> {
    await this.refresh(true);
    const builds: LoadedPackage[] = [];
    for (const [name, version] of this.latest) {
      if (name === packageName) continue;
      try {
        builds.push((await this.load(name, version)).loaded);
      } catch {
        // a build that cannot load runs no task: it takes no name from anyone
      }
    }
    return builds;
  }

  /** The newest published definition of a process code. */
  async findProcess(code: string): Promise<ResolvedProcess | undefined> {
    await this.refresh(true);
    const build = await this.inNewestBuilds((b) => (processText(b, code) !== undefined ? b : undefined));
    return build && this.process(build, code);
  }

  /**
   * The first thing `pick` finds in the newest builds. A package that fails to load does not keep
   * the others' from being found; when nothing is found, its failure is thrown (it may be what
   * was looked for).
   */
  private async inNewestBuilds<T>(pick: (build: LoadedBuild) => T | undefined): Promise<T | undefined> {
    let failure: unknown = null;
    for (const [packageName, version] of this.latest) {
      let build;
      try {
        build = await this.load(packageName, version);
      } catch (error) {
        failure ??= error;
        continue;
      }
      const found = pick(build);
      if (found !== undefined) return found;
    }
    if (failure !== null) throw failure;
    return undefined;
  }

  /** A process of a given build (an instance keeps the build it started with). */
  async processOfBuild(packageName: string, version: number, code: string): Promise<ResolvedProcess> {
    const build = await this.load(packageName, version);
    if (processText(build, code) === undefined) throw new Error(`build ${version} of ${packageName} has no process ${code}`);
    return this.process(build, code);
  }

  private async process(build: LoadedBuild, code: string): Promise<ResolvedProcess> {
    const key = `${build.packageName}@${build.version}/${code}`;
    let definition = this.definitions.get(key);
    if (!definition) {
      definition = await parseProcess(processText(build, code) as string);
      this.definitions.set(key, definition);
    }
    return { packageName: build.packageName, version: build.version, definition, build };
  }
}

/**
 * A build's diagram of a process code: its own entries only, so that a code such as "toString" or
 * "__proto__" (from a request) is no process rather than something the object inherits.
 */
function processText(build: LoadedBuild, code: string): string | undefined {
  const processes = build.build.manifest.processes;
  return Object.hasOwn(processes, code) ? processes[code] : undefined;
}

/** A loaded package's task classes by task name (the static taskName, else the class name); the first of a name. */
export function taskClassesByName(loaded: LoadedPackage): Map<string, AnyTaskClass> {
  const byName = new Map<string, AnyTaskClass>();
  for (const { name, taskClass } of packageTaskClasses(loaded)) if (!byName.has(name)) byName.set(name, taskClass);
  return byName;
}
