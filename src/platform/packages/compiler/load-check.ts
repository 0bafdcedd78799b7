/**
 * Publish's load check, off the server's thread: the new bundle (with the builds of its
 * dependencies) is evaluated once in a worker thread of its own, exactly as loadPackage evaluates
 * it, and the thread is stopped once it has answered or when LOAD_LIMIT_MS have passed. Code
 * whose top-level statements loop or block forever is so refused (PackageLoadError) without ever
 * running on the thread that serves everyone else; code that throws as it loads is refused with
 * loadPackage's own message.
 *
 * The thread imports the same "underway" (src/index.ts) the platform hands to package code, and
 * the same loader (load.ts), through tsx's loader, which it registers itself as the task threads
 * do (worker/isolation/exec-argv.ts, runtime/isolation/thread-boot.mjs). Starting it costs a
 * publish about 0.6 s here (tsx and the API's modules), before the limit starts to count; the
 * type-check before it takes seconds.
 */
import { newThread } from "../../../worker/isolation/exec-argv.ts";
import { LOAD_LIMIT_MS } from "./load.ts";
import { PackageLoadError, type CompiledPackage } from "./types.ts";

export { LOAD_LIMIT_MS };
/** The heap the checking thread may use, MB (as an isolated task's default): more is refused. */
const LOAD_MEMORY_MB = 256;
/** The thread must have imported the platform API by then (it takes about 0.6 s), ms. */
const BOOT_LIMIT_MS = 60_000;

/** A stored build as the thread gets it: its code and the builds of its dependencies it runs with. */
export interface ThreadBuild {
  readonly packageName: string;
  readonly code: string;
  readonly dependencies: Readonly<Record<string, number>>;
}

/** What the thread boots with. */
export interface LoadCheckData {
  /** The module package code gets as "underway" (a file: URL). */
  readonly platformModule: string;
  readonly packageName: string;
  readonly code: string;
  /** The package's dependency builds, by package name (loadCompiled's `dependencies`). */
  readonly dependencies: Readonly<Record<string, number>>;
  /** Every build they need, by `${packageName}@${version}`. */
  readonly builds: Readonly<Record<string, ThreadBuild>>;
}

export type FromLoadCheck =
  | { readonly t: "ready" }
  /** It is about to evaluate this package's bundle (the package itself or one of its dependencies). */
  | { readonly t: "loading"; readonly packageName: string }
  | { readonly t: "loaded" }
  /** Refused as loadPackage refuses it (PackageLoadError). */
  | { readonly t: "refused"; readonly message: string }
  /** Could not be loaded for another reason (a cycle of builds, say), as the platform's loader says it. */
  | { readonly t: "failed"; readonly message: string };

/** The stored builds (Packages): what the check needs of them. */
export interface StoredBuilds {
  build(packageName: string, version: number): Promise<{ readonly code: string; readonly manifest: { readonly dependencies?: Readonly<Record<string, number>> } } | null>;
  latestVersions(): Promise<ReadonlyMap<string, number>>;
  listPackages(): Promise<readonly { readonly name: string; readonly dependencies: readonly string[] }[]>;
}

/**
 * The builds the thread loads, chosen as PackageLoader.load chooses them: each with the builds
 * its manifest records, or (a build older than that record) the newest build of each package it
 * names.
 */
async function threadBuilds(stored: StoredBuilds, dependencies: Readonly<Record<string, number>>): Promise<Record<string, ThreadBuild>> {
  const builds: Record<string, ThreadBuild> = {};
  const visit = async (packageName: string, version: number): Promise<void> => {
    const key = `${packageName}@${version}`;
    if (Object.hasOwn(builds, key)) return;
    const build = await stored.build(packageName, version);
    if (!build) throw new Error(`package ${packageName} has no build ${version}`);
    let recorded = build.manifest.dependencies;
    if (recorded === undefined) {
      const names = (await stored.listPackages()).find((p) => p.name === packageName)?.dependencies ?? [];
      const latest = await stored.latestVersions();
      const newest: Record<string, number> = {};
      for (const name of names) {
        const v = latest.get(name);
        if (v === undefined) throw new Error(`package ${packageName} depends on ${name}, which has no build`);
        newest[name] = v;
      }
      recorded = newest;
    }
    builds[key] = { packageName, code: build.code, dependencies: recorded };
    for (const [name, v] of Object.entries(recorded)) await visit(name, v);
  };
  for (const [name, v] of Object.entries(dependencies)) await visit(name, v);
  return builds;
}

/**
 * Loads a compiled package, with the dependency builds it was compiled against, in a thread of
 * its own (see above). Resolves when it loads; throws PackageLoadError when its code (or a
 * dependency's) throws as it loads, refuses an import, does not finish within the limit, ends
 * its thread or runs out of memory; throws Error when a dependency build cannot be found or the
 * thread cannot start.
 */
export async function checkLoadInThread(
  compiled: CompiledPackage,
  dependencies: Readonly<Record<string, number>>,
  stored: StoredBuilds,
  options: { readonly limitMs?: number } = {},
): Promise<void> {
  const limitMs = options.limitMs ?? LOAD_LIMIT_MS;
  const { packageName } = compiled;
  const data: LoadCheckData = {
    platformModule: new URL("../../../index.ts", import.meta.url).href,
    packageName,
    code: compiled.code,
    dependencies,
    builds: await threadBuilds(stored, dependencies),
  };
  const thread = newThread(new URL("./load-check-thread.mjs", import.meta.url), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: LOAD_MEMORY_MB },
  });
  // The package whose code is running: the one named when time runs out.
  let loading = packageName;
  const whose = (): string => (loading === packageName ? `package ${packageName}: its code` : `package ${packageName}: the code of its dependency ${loading}`);
  try {
    await new Promise<void>((resolve, reject) => {
      let timer = setTimeout(() => reject(new Error(`package ${packageName}: the thread that checks its code did not start within ${BOOT_LIMIT_MS / 1000} s`)), BOOT_LIMIT_MS);
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        thread.removeAllListeners();
        // A late error of the thread (it is being stopped) has nobody to tell.
        thread.on("error", () => {});
        if (error) reject(error);
        else resolve();
      };
      thread.on("message", (message: FromLoadCheck) => {
        switch (message.t) {
          case "ready":
            clearTimeout(timer);
            timer = setTimeout(() => {
              settle(
                new PackageLoadError(
                  `${whose()} did not finish loading within ${limitMs / 1000} s and was stopped: ` +
                    "a schema's top-level code must not loop or block (do long work in a function or a task)",
                ),
              );
            }, limitMs);
            return;
          case "loading":
            loading = message.packageName;
            return;
          case "loaded":
            return settle();
          case "refused":
            return settle(new PackageLoadError(message.message));
          case "failed":
            return settle(new Error(message.message));
        }
      });
      thread.on("error", (error: Error & { code?: string }) => {
        if (error.code === "ERR_WORKER_OUT_OF_MEMORY") {
          settle(new PackageLoadError(`${whose()} used more than ${LOAD_MEMORY_MB} MB of memory while loading, and was stopped`));
        } else {
          settle(new Error(`package ${packageName}: the thread that checks its code failed: ${error.message}`, { cause: error }));
        }
      });
      thread.on("exit", (code) => settle(new PackageLoadError(`${whose()} ended its thread (exit code ${code}) while loading: package code must not call process.exit`)));
    });
  } finally {
    await thread.terminate();
  }
}
