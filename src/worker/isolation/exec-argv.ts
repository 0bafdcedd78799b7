import { Worker as Thread } from "node:worker_threads";

/**
 * The Node.js options a task thread starts with. A worker thread inherits its process's options,
 * preloads included: a process started with tsx's loader (`node --import tsx app.ts`, or the `tsx`
 * command) would load the loader again in every thread, about 80 ms of each thread's boot here.
 * A task thread has no use for it: it boots from plain JavaScript (the build of thread-bundle.ts),
 * or from the sources through an entry that registers the loader itself, and it registers the
 * loader when it first imports a TypeScript task module (thread-main.ts). Every other option
 * (`--enable-source-maps`, another `--import`, `--cpu-prof`, ...) is kept.
 *
 * Options given to a thread explicitly are checked as a thread's: the ones that only a process
 * can have (`--max-old-space-size`, `--stack-size`, `--expose-gc`, ...) are refused, where
 * inherited ones are not. So a thread inherits its options unless tsx's were left out, and then
 * those Node refuses are left out as well (see ThreadOptions.refused).
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

/**
 * The `execArgv` option of the task threads: absent (inherit the process's) unless tsx's preloads
 * were left out of it.
 */
export class ThreadOptions {
  private execArgv: string[] | undefined;

  constructor(processArgv: readonly string[]) {
    const kept = withoutTsxPreloads(processArgv);
    this.execArgv = kept.length === processArgv.length ? undefined : kept;
  }

  /** What to give `new Worker`: `{ execArgv }`, or nothing to inherit the process's options. */
  option(): { execArgv?: string[] } {
    return this.execArgv ? { execArgv: this.execArgv } : {};
  }

  /**
   * `new Worker` refused the options with ERR_WORKER_INVALID_EXEC_ARGV ("... invalid execArgv
   * flags: --max-old-space-size=4096, --expose-gc"): leaves those out from now on. False when
   * there is nothing left to try (the error is then not about the options given here).
   */
  refused(error: unknown): boolean {
    if (!this.execArgv || (error as { code?: string } | null)?.code !== "ERR_WORKER_INVALID_EXEC_ARGV") return false;
    const listed = /flags: (.*)$/.exec((error as Error).message)?.[1]?.split(", ") ?? [];
    const names = new Set(listed.map((flag) => flag.split("=")[0]!));
    const kept: string[] = [];
    for (let i = 0; i < this.execArgv.length; i++) {
      const arg = this.execArgv[i]!;
      if (names.has(arg.split("=")[0]!)) {
        // `--flag value`: its value goes with it.
        if (!arg.includes("=") && i + 1 < this.execArgv.length && !this.execArgv[i + 1]!.startsWith("-")) i++;
        continue;
      }
      kept.push(arg);
    }
    if (kept.length === this.execArgv.length) {
      // Named nothing given here: inherit the process's options after all (tsx's preload with them).
      this.execArgv = undefined;
      return true;
    }
    this.execArgv = kept;
    return true;
  }
}

/** The process's options, but tsx's loader: a thread registers it itself if it needs it (see above). */
const THREAD_OPTIONS = new ThreadOptions(process.execArgv);

/** A new thread, with the options Node refuses in a thread left out (see ThreadOptions.refused). */
export function newThread(entry: URL, options: ConstructorParameters<typeof Thread>[1]): Thread {
  for (;;) {
    try {
      return new Thread(entry, { ...options, ...THREAD_OPTIONS.option() });
    } catch (error) {
      if (!THREAD_OPTIONS.refused(error)) throw error;
    }
  }
}
