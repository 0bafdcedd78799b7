/**
 * The task threads' own code as a compiled bundle, so that a new thread boots in a fraction of
 * the time: without it a thread registers the TypeScript loader and loads some eighty source
 * modules through it (each a round trip to the loader's thread), about 150 ms of its boot.
 *
 * The bundle holds the thread's entry, the public API (src/index.ts), the host module (the
 * platform's, when there is one) and the task modules known when it is made, their code split
 * into shared chunks, with the packages left as imports. It is written under
 * node_modules/.cache/underway/threads/ beside the sources, so the packages resolve as they do
 * from the sources, and reused while none of its sources changed (checked by size and
 * modification time at every start; a change makes the next start build it again).
 * Each source's `import.meta.url` stands for the source's own URL, so paths relative to a module
 * (migrations, createRequire) resolve as they do unbundled.
 *
 * A task module learned later is imported as it is (TypeScript through the loader, registered
 * then); its imports of the modules built are pointed at the bundle's copies, so a task and its
 * thread share one runtime. Where the bundle cannot be built or written (esbuild
 * missing, a read-only install), threads boot from the sources as before.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Logger } from "../../tasks/logger.ts";

/**
 * A build of the sources and of the task modules known when it was made: one module per module,
 * their code in shared chunks, laid out as on disk under the build's folder.
 */
export interface ThreadBundle {
  /** The thread's entry. */
  readonly entry: URL;
  /** The build's folder, a file: URL ending in a slash. */
  readonly built: string;
  /** The modules built (file: URLs of the sources). */
  readonly modules: readonly string[];
}

/**
 * The built counterpart of a module (a file: URL), or null when it is not in the build. A task
 * thread imports those instead, so that it holds one copy of each (one runtime, one platform).
 */
export function bundledModule(bundle: Pick<ThreadBundle, "built" | "modules">, url: string): string | null {
  if (!bundle.modules.includes(url)) return null;
  return builtPath(bundle.built, url);
}

function builtPath(built: string, url: string): string {
  return `${built}${new URL(url).pathname.slice(1).replace(/\.[cm]?[jt]sx?$/, "")}.js`;
}

const SRC = fileURLToPath(new URL("../../", import.meta.url));
const ROOT = dirname(SRC);
const THREAD_MAIN = fileURLToPath(new URL("./thread-main.ts", import.meta.url));
const CACHE = join(ROOT, "node_modules", ".cache", "underway", "threads");

interface Meta {
  readonly esbuild: string;
  /** The folder (under the bundle's) of the current build. */
  readonly build: string;
  /** Every source in the bundle, relative to the project root, with its size and modification time. */
  readonly inputs: readonly { readonly path: string; readonly size: number; readonly mtimeMs: number }[];
  /**
   * The files an application module's package imports resolved to (see packageImports), absolute:
   * the build imports them by path, so it is made again should one move or change (a package
   * upgraded) rather than import a file that is gone.
   */
  readonly imports?: readonly { readonly path: string; readonly size: number; readonly mtimeMs: number }[];
  /**
   * The entries whose built copy the threads import (relative to the project root). An application
   * module the build cannot stand for faithfully (see builtEntries) is left out: threads import it
   * as it is. Absent in older builds: every entry.
   */
  readonly modules?: readonly string[];
  /**
   * The folders where a package an application module imports was looked for and not found
   * (`<folder>/node_modules/<name>`): the build is made again once one appears (the package was
   * installed), rather than keep importing it from where it cannot be found.
   */
  readonly missing?: readonly string[];
}

interface Metafile {
  readonly inputs: Record<string, { readonly format?: "cjs" | "esm" }>;
  readonly outputs: Record<string, { readonly entryPoint?: string; readonly inputs: Record<string, unknown>; readonly imports: readonly { readonly path: string; readonly external?: boolean }[] }>;
}

interface EsbuildLike {
  readonly version: string;
  build(options: Record<string, unknown>): Promise<{ metafile?: Metafile }>;
}

/** The per-module bindings that stand for import.meta.url, import.meta.filename and import.meta.dirname in the bundle. */
const SOURCE_URL = "__underway_source_url";
const SOURCE_FILENAME = "__underway_source_filename";
const SOURCE_DIRNAME = "__underway_source_dirname";

/** Builds older than this, and not current, are removed when a new one is made, ms. */
const STALE_BUILD_MS = 60 * 60 * 1000;

/** The build of the sources, made if needed. Null when it cannot be had: threads boot from the sources. */
export async function threadBundle(logger: Logger, taskModules: readonly string[] = []): Promise<ThreadBundle | null> {
  if (process.env.UNDERWAY_THREAD_BUNDLE === "0") return null;
  let esbuild: EsbuildLike;
  try {
    esbuild = createRequire(import.meta.url)("esbuild") as EsbuildLike;
  } catch {
    return null;
  }
  const entries = [...new Set([THREAD_MAIN, join(SRC, "index.ts"), ...taskModules.filter((url) => url.startsWith("file:")).map((url) => fileURLToPath(url))])]
    .filter((path) => /\.[cm]?[jt]s$/.test(path) && existsSync(path))
    .sort();
  const kysely = kyselyBuild();
  const conditions = userConditions();
  const key = createHash("sha256")
    .update(JSON.stringify({ esbuild: esbuild.version, entries: entries.map((p) => relative(ROOT, p)), kysely: kysely?.version ?? null, conditions }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(CACHE, key);
  const current = currentBuild(dir, esbuild.version);
  if (current) return bundleIn(join(dir, current.build), current.modules ? current.modules.map((path) => join(ROOT, path)) : entries);
  // Each build goes to a folder of its own, made current by renaming its description into place:
  // threads of other processes booting from the previous build are never pulled from under them.
  const build = `${Date.now().toString(36)}-${process.pid}`;
  const out = join(dir, build);
  try {
    // Kysely first, as one file beside the build (see KYSELY_REQUIRE); without it (not installed
    // where the sources expect it), the sources require it as they do unbundled.
    const kyselyFile = kysely ? join(out, "kysely.cjs") : null;
    if (kysely && kyselyFile) {
      await esbuild.build({ entryPoints: [kysely.main], outfile: kyselyFile, bundle: true, format: "cjs", platform: "node", target: "node20", logLevel: "silent", keepNames: true });
    }
    const imported = new Set<string>();
    const missing = new Set<string>();
    const loose = new Set<string>();
    const result = await esbuild.build({
      entryPoints: entries,
      outdir: out,
      // Laid out as on disk (task modules may be anywhere): each module's counterpart is easy to find.
      outbase: "/",
      absWorkingDir: ROOT,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node20",
      metafile: true,
      logLevel: "silent",
      // The names of classes and functions are kept: error names and task class names come from them.
      keepNames: true,
      // Packages resolve as Node resolves them in the thread ("import" or "require", "node", and
      // the process's own --conditions), not with esbuild's bundler defaults ("module" first,
      // a "module" field): a package's bundler build is not what the application runs.
      conditions,
      mainFields: ["main"],
      // Before sourceUrls: it decides which imports are bundled at all.
      plugins: [packageImports(imported, missing), sourceUrls(kyselyFile, loose)],
      define: { "import.meta.url": SOURCE_URL, "import.meta.filename": SOURCE_FILENAME, "import.meta.dirname": SOURCE_DIRNAME },
    });
    const inputs = Object.keys(result.metafile?.inputs ?? {}).map((path) => {
      const stat = statSync(join(ROOT, path));
      return { path, size: stat.size, mtimeMs: stat.mtimeMs };
    });
    const imports = [...imported].map((path) => {
      const stat = statSync(path);
      return { path, size: stat.size, mtimeMs: stat.mtimeMs };
    });
    const kept = builtEntries(result.metafile, entries, loose);
    const meta: Meta = { esbuild: esbuild.version, build, inputs, imports, modules: kept.map((path) => relative(ROOT, path)), missing: [...missing] };
    const staged = join(dir, `current.${build}.json`);
    writeFileSync(staged, JSON.stringify(meta));
    renameSync(staged, join(dir, "current.json"));
    removeStaleBuilds(dir, build);
    return bundleIn(out, kept);
  } catch (error) {
    rmSync(out, { recursive: true, force: true });
    logger.warn({ err: error }, "the task threads' bundle could not be built; threads boot from the sources (slower)");
    return null;
  }
}

function bundleIn(dir: string, entries: readonly string[]): ThreadBundle {
  const built = pathToFileURL(dir).href + "/";
  return { entry: new URL(builtPath(built, pathToFileURL(THREAD_MAIN).href)), built, modules: entries.map((path) => pathToFileURL(path).href) };
}

/** The current build (its folder name, the entries built), when every one of its sources is as it was built from. */
function currentBuild(dir: string, version: string): Pick<Meta, "build" | "modules"> | null {
  try {
    const meta = JSON.parse(readFileSync(join(dir, "current.json"), "utf8")) as Meta;
    if (meta.esbuild !== version || meta.inputs.length === 0) return null;
    const same =
      meta.inputs.every((input) => {
        const stat = statSync(join(ROOT, input.path));
        return stat.size === input.size && stat.mtimeMs === input.mtimeMs;
      }) &&
      (meta.imports ?? []).every((file) => {
        const stat = statSync(file.path);
        return stat.size === file.size && stat.mtimeMs === file.mtimeMs;
      }) &&
      !(meta.missing ?? []).some((path) => existsSync(path));
    return same && statSync(fileURLToPath(builtPath(pathToFileURL(join(dir, meta.build)).href + "/", pathToFileURL(THREAD_MAIN).href))).isFile()
      ? meta
      : null;
  } catch {
    return null;
  }
}

function removeStaleBuilds(dir: string, keep: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === keep) continue;
    try {
      if (Date.now() - statSync(join(dir, entry.name)).mtimeMs > STALE_BUILD_MS) rmSync(join(dir, entry.name), { recursive: true, force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}

/**
 * Kysely, as the platform requires it (kysely-module.ts: its CommonJS build, some four hundred
 * small modules). A thread of a platform worker spent about 60 ms of its boot requiring them one
 * by one; the bundle requires one file of them instead, built beside it. Its objects are
 * recognised by shape, so a task module's own "kysely" works with this copy, as two builds do in
 * the worker's process.
 */
const KYSELY_REQUIRE = 'createRequire(import.meta.url)("kysely")';
const KYSELY_MODULE = join(SRC, "platform", "db", "kysely-module.ts");

/** Kysely's CommonJS entry and version, where the sources would require it; null when it cannot be found. */
function kyselyBuild(): { main: string; version: string } | null {
  try {
    const require = createRequire(KYSELY_MODULE);
    const main = require.resolve("kysely");
    // Its package.json is not among its exports: found above its entry.
    for (let dir = dirname(main); dir !== dirname(dir); dir = dirname(dir)) {
      const manifest = join(dir, "package.json");
      if (!existsSync(manifest)) continue;
      const { name, version } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version?: string };
      if (name === "kysely" && typeof version === "string") return { main, version };
    }
    return null;
  } catch {
    return null;
  }
}

interface ResolveArgs {
  readonly path: string;
  readonly importer: string;
  readonly resolveDir: string;
  readonly kind: string;
  readonly pluginData?: unknown;
}

interface PluginBuild {
  onResolve(options: { filter: RegExp }, callback: (args: ResolveArgs) => Promise<{ path: string; external?: boolean } | undefined>): void;
  resolve(path: string, options: { kind: string; resolveDir: string; importer: string; pluginData: unknown }): Promise<{ path: string; external: boolean; errors: readonly unknown[] }>;
}

/** Marks the resolutions packageImports asks esbuild for, so that it does not see them again. */
const RESOLVING = Symbol("underway.resolving");

/**
 * Where the bundle's imports of packages (bare specifiers) go. The bundle lives in underway's own
 * folder (node_modules/.cache/underway/threads/...), so a bare import left as it was resolves from
 * there at run time: right for underway's sources, whose packages are underway's, but not for an
 * application's task module elsewhere, whose `import ... from "underway"` and whose own
 * dependencies are found from its own folder. So an application module's bare imports are
 * resolved from where it lives, as it was built: underway itself (its sources, or any TypeScript)
 * is bundled, the threads' one copy of it; any other package stays an import, of the file it
 * resolved to. One that does not resolve stays as it was, and fails where the application's would.
 */
const packageImports = (imported: Set<string>, missing: Set<string>) => ({
  name: "underway-package-imports",
  setup(build: PluginBuild): void {
    build.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === RESOLVING) return undefined;
      const keep = { path: args.path, external: true };
      if (args.path.startsWith("node:") || !args.importer || !isOutside(args.importer, ROOT)) return keep;
      const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: RESOLVING });
      if (resolved.errors.length > 0) {
        for (const folder of packageFolders(args.path, args.resolveDir)) missing.add(folder);
        return keep;
      }
      if (resolved.external || !resolved.path.startsWith("/")) return keep;
      if (!isOutside(resolved.path, SRC) || /\.[cm]?tsx?$/.test(resolved.path)) return { path: resolved.path };
      imported.add(resolved.path);
      return { path: pathToFileURL(resolved.path).href, external: true };
    });
  },
});

/**
 * Where Node looks for the package of a bare specifier imported from `dir`: `node_modules/<name>`
 * in it and in each folder above it (none for a subpath import, `#...`).
 */
function packageFolders(specifier: string, dir: string): string[] {
  const name = /^(@[^/]+\/[^/]+|[^@#/][^/]*)/.exec(specifier)?.[1];
  if (!name || !dir.startsWith("/")) return [];
  const folders: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    if (!at.split("/").includes("node_modules")) folders.push(join(at, "node_modules", name));
    if (at === dirname(at)) return folders;
  }
}

/** The conditions the process's Node.js options add (`--conditions`, `-C`), which its threads resolve with too. */
function userConditions(): string[] {
  const options = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  const conditions: string[] = [];
  options.forEach((option, i) => {
    const inline = /^(?:--conditions|-C)=(.+)$/.exec(option);
    if (inline) conditions.push(inline[1]!);
    else if ((option === "--conditions" || option === "-C") && options[i + 1]) conditions.push(options[i + 1]!);
  });
  return conditions;
}

/**
 * The entries whose built copy stands for them. An application module (outside the project) that
 * is CommonJS (`require`, `module.exports`, `__dirname`: a bundle of ES modules has none of
 * them), or that resolves what it imports at run time (`import(name)` of a specifier that is not a
 * literal, `import.meta.resolve`: the bundle's copy sits in another folder), cannot be stood for:
 * an entry that holds one is left out of the build's modules, and threads import it as it is.
 */
function builtEntries(metafile: Metafile | undefined, entries: readonly string[], flagged: ReadonlySet<string>): string[] {
  if (!metafile) return [...entries];
  const loose = new Set(
    Object.entries(metafile.inputs)
      .filter(([path, input]) => isOutside(join(ROOT, path), ROOT) && (input.format === "cjs" || /\.c[jt]s$/.test(path) || flagged.has(join(ROOT, path))))
      .map(([path]) => join(ROOT, path)),
  );
  if (loose.size === 0) return [...entries];
  const holds = (output: string, seen: Set<string>): boolean => {
    if (seen.has(output)) return false;
    seen.add(output);
    const { inputs, imports } = metafile.outputs[output] ?? { inputs: {}, imports: [] };
    return Object.keys(inputs).some((path) => loose.has(join(ROOT, path))) || imports.some((i) => !i.external && holds(i.path, seen));
  };
  const looseEntries = new Set(
    Object.entries(metafile.outputs)
      .filter(([output, { entryPoint }]) => entryPoint !== undefined && holds(output, new Set()))
      .map(([, { entryPoint }]) => join(ROOT, entryPoint!)),
  );
  return entries.filter((path) => !looseEntries.has(path));
}

/** Whether `path` is outside folder `dir`. */
function isOutside(path: string, dir: string): boolean {
  const from = relative(dir, path);
  return from === "" ? false : from.startsWith("..") || from.startsWith("/");
}

/** A dynamic import whose specifier is not a string literal (a false match only costs the module its built copy). */
const DYNAMIC_IMPORT = /(?<![\w$.])import\s*\(\s*(?!["'])/;

/**
 * Gives each bundled source its own `import.meta.url`, `.filename` and `.dirname`, flags the
 * application modules that resolve at run time (into `loose`), and points the platform's require of Kysely
 * at `kyselyFile` (see KYSELY_REQUIRE).
 */
const sourceUrls = (kyselyFile: string | null, loose: Set<string>) => ({
  name: "underway-source-urls",
  setup(build: { onLoad(options: { filter: RegExp }, callback: (args: { path: string }) => { contents: string; loader: string }): void }): void {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
      let text = readFileSync(args.path, "utf8");
      if (kyselyFile && args.path === KYSELY_MODULE) text = text.replace(KYSELY_REQUIRE, `createRequire(import.meta.url)(${JSON.stringify(kyselyFile)})`);
      const loader = /\.[cm]?ts$/.test(args.path) ? "ts" : "js";
      // An application module that resolves at run time (see builtEntries): its entries are imported as they are.
      if (isOutside(args.path, ROOT) && (text.includes("import.meta.resolve") || DYNAMIC_IMPORT.test(text))) loose.add(args.path);
      // `define` points every import.meta.url, .filename and .dirname (not the words in strings and comments) at these bindings, one per module.
      let binding = text.includes("import.meta.url") ? `var ${SOURCE_URL} = ${JSON.stringify(pathToFileURL(args.path).href)};\n` : "";
      if (text.includes("import.meta.filename")) binding += `var ${SOURCE_FILENAME} = ${JSON.stringify(args.path)};\n`;
      if (text.includes("import.meta.dirname")) binding += `var ${SOURCE_DIRNAME} = ${JSON.stringify(dirname(args.path))};\n`;
      return { contents: binding + text, loader };
    });
  },
});
