/**
 * The data the package compiler works on: what Save stores (schema texts, process scripts and
 * conditions) and what Publish produces (a compiled package).
 */

/** A Source code schema: one TypeScript module of a package. */
export interface SourceSchema {
  /** The schema name, e.g. "UsrActivityData"; also the module name other schemas import. */
  readonly name: string;
  /** The schema's TypeScript text. */
  readonly source: string;
}

/** The script of one Script task of a business process. */
export interface ProcessScript {
  readonly processCode: string;
  readonly elementId: string;
  /** Names of schemas (of this package or its dependencies) whose exports are in scope. */
  readonly usings: readonly string[];
  /** A TypeScript function body: may use await and `context`; must return a boolean on every path. */
  readonly body: string;
}

/** The condition of one conditional sequence flow of a business process. */
export interface ProcessCondition {
  readonly processCode: string;
  readonly flowId: string;
  readonly usings: readonly string[];
  /** A TypeScript boolean expression; may use `context`. */
  readonly expression: string;
}

export interface CompileInput {
  readonly packageName: string;
  readonly schemas: readonly SourceSchema[];
  readonly scripts: readonly ProcessScript[];
  readonly conditions: readonly ProcessCondition[];
  /**
   * The compiled packages this one depends on; their schemas can be imported by name. List the
   * whole dependency hierarchy (a dependency's own dependencies too): a dependency's schemas are
   * type-checked again with this package, and what they import must be among these packages.
   */
  readonly dependencies?: readonly CompiledPackage[];
}

/** One compile error. */
export interface CompileProblem {
  /** The schema name, or `${processCode}/${elementId}` (or `/${flowId}`) for a script (condition). */
  readonly schema: string;
  /** 1-based line within that schema's own text, or within the script body / condition expression. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  readonly message: string;
}

export interface CompiledPackage {
  readonly packageName: string;
  /** The bundle: one CommonJS script, evaluated by loadPackage. */
  readonly code: string;
  /** Export names (values and types) per schema. */
  readonly exports: Readonly<Record<string, readonly string[]>>;
  /** The schemas the bundle was compiled from (dependent packages type-check against them). */
  readonly schemas: readonly SourceSchema[];
}

/** What a script or condition sees as the variable `context`. */
export interface ScriptContext {
  readonly userConnection: unknown;
  readonly parameters: Record<string, unknown>;
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  /**
   * Script tasks only: the element waits for this task (a handle or an id) instead of completing
   * when the script returns; it completes when the task succeeds and goes to Error when the task
   * ends dead or canceled. Call it for several tasks to wait for all of them.
   */
  waitForTask(task: { readonly id: string } | string): void;
  /**
   * Aborts when the attempt running the instance stops: its timeout, a cancel of the instance or
   * its task, a lost lease, the worker's shutdown. Pass it to what a script waits for (fetch, a
   * timer) so that the script ends early; whatever it returns after that is not recorded.
   */
  readonly signal: AbortSignal;
}

export interface LoadedPackage {
  readonly packageName: string;
  /** Schema name -> its exports (the module namespace). */
  readonly modules: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The script of a Script task; throws when the package has no such script. */
  script(processCode: string, elementId: string): (context: ScriptContext) => Promise<boolean>;
  /** The condition of a sequence flow; throws when the package has no such condition. */
  condition(processCode: string, flowId: string): (context: ScriptContext) => boolean;
}

/** Publish failed: the problems, each located in its schema or script. */
export class PackageCompileError extends Error {
  override readonly name = "PackageCompileError";
  readonly problems: readonly CompileProblem[];

  constructor(packageName: string, problems: readonly CompileProblem[]) {
    const shown = problems
      .slice(0, 10)
      .map((p) => `  ${p.schema}:${p.line}:${p.column}: ${p.message}`)
      .join("\n");
    const more = problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : "";
    super(`package ${packageName} does not compile (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${shown}${more}`);
    this.problems = problems;
  }
}

/** A loaded package's code tried to require a module it may not use. */
export class PackageLoadError extends Error {
  override readonly name: string = "PackageLoadError";
}

/**
 * A package's top-level code did not finish loading within the limit and was stopped (loadPackage
 * on the platform's own thread). The message names the package and, for a stored build, its version.
 */
export class PackageLoadTimeoutError extends PackageLoadError {
  override readonly name: string = "PackageLoadTimeoutError";

  constructor(
    readonly packageName: string,
    readonly version: number | null,
    readonly limitMs: number,
  ) {
    super(
      `package ${packageName}${version === null ? "" : ` (build ${version})`}: its code did not finish loading within ${limitMs / 1000} s and was stopped: ` +
        "a schema's top-level code must not loop or block (do long work in a function or a task)",
    );
  }
}
