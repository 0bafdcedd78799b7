/**
 * Loading a compiled package: evaluates its bundle with `new Function("require", "module",
 * "exports", code)`. The `require` it gets answers only "underway" (the platform API namespace the
 * caller passes; it must be the very module instance the platform runs with, so classes such as
 * Activity and the Task runtime are shared) and the packages it depends on (their schema modules).
 * Anything else, node:fs included, throws: package code may import only "underway", its own
 * schemas and the schemas of the packages it depends on. (This is a rule of the platform, not a
 * sandbox: package code runs in the platform's process with its globals.)
 *
 * The bundle's top-level code runs with a time limit (LOAD_LIMIT_MS): code that loops or blocks
 * is stopped, and PackageLoadTimeoutError thrown, naming the package and the build.
 */
import { createContext, Script, type Context } from "node:vm";
import { PLATFORM_MODULE } from "./names.ts";
import { PackageLoadError, PackageLoadTimeoutError, type CompiledPackage, type LoadedPackage, type ScriptContext } from "./types.ts";

/**
 * How long a package's top-level code may run when it is loaded, ms: in Publish's check (its
 * dependencies' included) and at every load of a build on the platform's threads. Real module code
 * loads in milliseconds; this is also the most a build whose code does not finish holds the
 * thread that loads it, once per build and process (PackageLoader remembers it).
 */
export const LOAD_LIMIT_MS = 5_000;

export interface LoadOptions {
  /**
   * The most the bundle's top-level code may run, ms (default LOAD_LIMIT_MS): then it is stopped
   * and PackageLoadTimeoutError thrown. null: no limit (Publish's checking thread, which is
   * stopped from outside and names the package whose code runs).
   */
  readonly limitMs?: number | null;
  /** The stored build's version, which the error names (none for a build not stored yet). */
  readonly version?: number;
}

/**
 * What runs the bundle's top-level code with a time limit: a script of a context of its own that
 * only calls `run`, a function of the platform's own context. Node stops whatever JavaScript runs
 * when a script's timeout passes, the functions it calls included, and package code cannot catch
 * that; the package's code itself runs in the platform's context (its globals, the API's classes).
 */
let limiter: { readonly context: Context & { run?: () => void }; readonly script: Script } | undefined;

/** Calls fn, stopping it when it runs longer than limitMs: false then, true when it returned. */
function callWithin(fn: () => void, limitMs: number): boolean {
  limiter ??= { context: createContext({ run: undefined }), script: new Script("run()", { filename: "underway-package-load" }) };
  const { context, script } = limiter;
  let thrown: { readonly error: unknown } | null = null;
  const previous = context.run;
  context.run = () => {
    try {
      fn();
    } catch (error) {
      thrown = { error };
    }
  };
  try {
    script.runInContext(context, { timeout: limitMs });
  } catch (error) {
    // Only what Node throws reaches here (the package's own errors are caught above): the limit.
    if ((error as { code?: unknown } | null)?.code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return false;
    throw error;
  } finally {
    context.run = previous;
  }
  if (thrown !== null) throw (thrown as { readonly error: unknown }).error;
  return true;
}

type Module = Readonly<Record<string, unknown>>;
type ScriptFunction = (context: ScriptContext) => Promise<unknown>;
type ConditionFunction = (context: ScriptContext) => unknown;

interface BundleExports {
  readonly modules: readonly (readonly [string, Module])[];
  readonly scripts: readonly (readonly [string, string, ScriptFunction])[];
  readonly conditions: readonly (readonly [string, string, ConditionFunction])[];
}

function isBundleExports(value: unknown): value is BundleExports {
  const v = value as Partial<BundleExports> | null;
  return typeof v === "object" && v !== null && Array.isArray(v.modules) && Array.isArray(v.scripts) && Array.isArray(v.conditions);
}

export function loadPackage(
  compiled: CompiledPackage,
  platformApi: Record<string, unknown>,
  dependencies: readonly LoadedPackage[] = [],
  options: LoadOptions = {},
): LoadedPackage {
  const { packageName } = compiled;
  const limitMs = options.limitMs === undefined ? LOAD_LIMIT_MS : options.limitMs;
  const byName = new Map(dependencies.map((d) => [d.packageName, d]));
  const require = (specifier: string): unknown => {
    if (specifier === PLATFORM_MODULE) return platformApi;
    const dependency = byName.get(specifier);
    if (dependency) return dependency.modules;
    throw new PackageLoadError(
      `package code cannot import "${specifier}": a package may import only "${PLATFORM_MODULE}", its own schemas and the schemas of the packages it depends on` +
        ` (if ${JSON.stringify(specifier)} is a package ${packageName} depends on, pass its loaded package to loadPackage)`,
    );
  };
  const module: { exports: unknown } = { exports: {} };
  const evaluate = new Function("require", "module", "exports", `${compiled.code}\n//# sourceURL=underway-package/${packageName}.js`) as (
    require: (specifier: string) => unknown,
    module: { exports: unknown },
    exports: unknown,
  ) => void;
  const run = () => evaluate(require, module, module.exports);
  try {
    if (limitMs === null) run();
    else if (!callWithin(run, limitMs)) throw new PackageLoadTimeoutError(packageName, options.version ?? null, limitMs);
  } catch (error) {
    if (error instanceof PackageLoadError) throw error;
    // The package's own code threw as its modules ran: its author's to fix, said as such.
    throw new PackageLoadError(`package ${packageName}: its code threw while loading: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const bundle = module.exports;
  if (!isBundleExports(bundle)) throw new PackageLoadError(`package ${packageName}: the code is not a compiled package bundle`);

  const modules = Object.freeze(Object.fromEntries(bundle.modules.map(([name, exports]) => [name, exports])));
  const key = (processCode: string, id: string): string => `${processCode}\0${id}`;
  const scripts = new Map(bundle.scripts.map(([processCode, id, fn]) => [key(processCode, id), fn]));
  const conditions = new Map(bundle.conditions.map(([processCode, id, fn]) => [key(processCode, id), fn]));

  return {
    packageName,
    modules,
    script(processCode, elementId) {
      const fn = scripts.get(key(processCode, elementId));
      if (!fn) throw new Error(`package ${packageName} has no script ${processCode}/${elementId}`);
      return async (context) => {
        const result = await fn(context);
        // The type-check demands a boolean; this catches casts (`as any`) that slipped past it.
        if (typeof result !== "boolean") {
          throw new TypeError(`script ${processCode}/${elementId} of package ${packageName} returned ${typeof result}, not a boolean`);
        }
        return result;
      };
    },
    condition(processCode, flowId) {
      const fn = conditions.get(key(processCode, flowId));
      if (!fn) throw new Error(`package ${packageName} has no condition ${processCode}/${flowId}`);
      return (context) => {
        const result = fn(context);
        if (typeof result !== "boolean") {
          throw new TypeError(`condition ${processCode}/${flowId} of package ${packageName} returned ${typeof result}, not a boolean`);
        }
        return result;
      };
    },
  };
}
