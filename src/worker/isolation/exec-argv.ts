/**
 * The Node.js options a task thread starts with. A worker thread inherits its process's options,
 * preloads included: a process started with tsx's loader (`node --import tsx app.ts`, or the `tsx`
 * command) would load the loader again in every thread, about 80 ms of each thread's boot here.
 * A task thread has no use for it: it boots from plain JavaScript (the build of thread-bundle.ts),
 * or from the sources through an entry that registers the loader itself, and it registers the
 * loader when it first imports a TypeScript task module (thread-main.ts). Every other option
 * (`--enable-source-maps`, another `--import`, `--cpu-prof`, ...) is kept.
 */

/** Options that take a module to preload or a loader, as `--flag value` or `--flag=value`. */
const PRELOADS = new Set(["--import", "--require", "-r", "--loader", "--experimental-loader"]);

/** tsx's own specifiers: the package (`tsx`, `tsx/esm`, ...) or a file inside it, as a path or a file: URL. */
function isTsx(specifier: string): boolean {
  return specifier === "tsx" || specifier.startsWith("tsx/") || /[/\\]node_modules[/\\]tsx[/\\]/.test(specifier);
}

/** `execArgv` without the options that preload tsx. */
export function withoutTsxPreloads(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const eq = arg.indexOf("=");
    if (eq > 0 && PRELOADS.has(arg.slice(0, eq))) {
      if (!isTsx(arg.slice(eq + 1))) kept.push(arg);
      continue;
    }
    if (PRELOADS.has(arg) && i + 1 < execArgv.length) {
      const value = execArgv[i + 1]!;
      if (!isTsx(value)) kept.push(arg, value);
      i++;
      continue;
    }
    kept.push(arg);
  }
  return kept;
}
