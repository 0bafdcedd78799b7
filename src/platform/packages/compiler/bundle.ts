/**
 * Bundling a type-checked package with esbuild, in memory: one CommonJS script holding every
 * schema module and process module of the package, with "underway" and the dependency packages
 * left as `require(...)` calls that loadPackage answers.
 */
import { build, type Location, type Message, type Plugin } from "esbuild";
import { ENTRY_PROCESS_PREFIX, ENTRY_SCHEMA_PREFIX, generateEntry, type ProcessModule } from "./generate.ts";
import { offsetOf, position } from "./lines.ts";
import { importProblem, PLATFORM_MODULE, type SchemaScope } from "./names.ts";
import type { CompileProblem } from "./types.ts";

const NS_ENTRY = "underway-entry";
const NS_SCHEMA = "underway-schema";
const NS_PROCESS = "underway-process";
const NS_DEPENDENCY = "underway-dependency";

export type BundleResult = { readonly code: string; readonly problems?: undefined } | { readonly code?: undefined; readonly problems: CompileProblem[] };

export async function bundlePackage(scope: SchemaScope, processes: readonly ProcessModule[]): Promise<BundleResult> {
  const schemaNames = [...scope.own.keys()];
  const processByCode = new Map(processes.map((p) => [p.processCode, p]));
  const dependencyNames = new Set([...scope.entries()].map(([name]) => name).filter((name) => name !== scope.packageName));

  const plugin: Plugin = {
    name: "underway-package",
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === "entry-point") return { path: "entry", namespace: NS_ENTRY };
        if (args.path === PLATFORM_MODULE) return { path: PLATFORM_MODULE, external: true };
        if (args.namespace === NS_ENTRY) {
          if (args.path.startsWith(ENTRY_SCHEMA_PREFIX)) return { path: args.path.slice(ENTRY_SCHEMA_PREFIX.length), namespace: NS_SCHEMA };
          if (args.path.startsWith(ENTRY_PROCESS_PREFIX)) return { path: args.path.slice(ENTRY_PROCESS_PREFIX.length), namespace: NS_PROCESS };
        }
        // A dependency's schema module requires its package, which loadPackage provides.
        if (args.namespace === NS_DEPENDENCY && dependencyNames.has(args.path)) return { path: args.path, external: true };
        const target = scope.resolve(args.path, scope.packageName);
        if (target.kind === "schema") {
          return target.packageName === scope.packageName
            ? { path: target.schema, namespace: NS_SCHEMA }
            : { path: `${target.packageName}/${target.schema}`, namespace: NS_DEPENDENCY, pluginData: target };
        }
        return { errors: [{ text: importProblem(args.path, target, scope.packageName) ?? `cannot import "${args.path}"` }] };
      });
      b.onLoad({ filter: /.*/, namespace: NS_ENTRY }, () => ({ contents: generateEntry(schemaNames, processes), loader: "ts" }));
      b.onLoad({ filter: /.*/, namespace: NS_SCHEMA }, (args) => ({ contents: scope.own.get(args.path)?.source ?? "", loader: "ts" }));
      b.onLoad({ filter: /.*/, namespace: NS_PROCESS }, (args) => ({ contents: processByCode.get(args.path)?.text ?? "", loader: "ts" }));
      b.onLoad({ filter: /.*/, namespace: NS_DEPENDENCY }, (args) => {
        const { packageName, schema } = args.pluginData as { packageName: string; schema: string };
        return { contents: `module.exports = require(${JSON.stringify(packageName)})[${JSON.stringify(schema)}];\n`, loader: "js" };
      });
    },
  };

  try {
    const result = await build({
      entryPoints: ["entry"],
      bundle: true,
      write: false,
      format: "cjs",
      platform: "node",
      target: "node20",
      // Task classes are found by their class name: bundling must not rename them.
      keepNames: true,
      // Every import() becomes a call of the loader's require, which refuses any module a package
      // may not import, so none reaches Node's own loader.
      supported: { "dynamic-import": false },
      logLevel: "silent",
      charset: "utf8",
      plugins: [plugin],
      tsconfigRaw: { compilerOptions: { useDefineForClassFields: true, verbatimModuleSyntax: false } },
    });
    const output = result.outputFiles[0];
    if (!output) return { problems: [{ schema: scope.packageName, line: 1, column: 1, message: "esbuild produced no output" }] };
    return { code: output.text };
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors;
    if (!Array.isArray(errors)) throw error;
    return { problems: errors.map((m) => locate(m, scope.packageName, processByCode)) };
  }
}

/** An esbuild message, located in its schema or script. */
function locate(message: Message, packageName: string, processes: ReadonlyMap<string, ProcessModule>): CompileProblem {
  const location: Location | null = message.location;
  if (!location) return { schema: packageName, line: 1, column: 1, message: message.text };
  // esbuild names a file of a plugin's namespace `namespace:path`.
  const [, namespace, path = location.file] = /^(underway-[a-z]+):(.*)$/.exec(location.file) ?? [];
  if (namespace === NS_PROCESS) {
    const module = processes.get(path);
    if (module) {
      // Offset of the line in the generated text, then the region that holds it.
      const offset = offsetOf(module.text, location.line, location.column);
      for (const region of module.regions) {
        const relative = offset - region.start;
        if (relative >= 0 && relative <= region.text.length) return { schema: region.owner, ...position(region.text, relative), message: message.text };
      }
      return { schema: module.regions[0]?.owner ?? module.processCode, line: 1, column: 1, message: message.text };
    }
  }
  return { schema: path || packageName, line: location.line, column: location.column + 1, message: message.text };
}
