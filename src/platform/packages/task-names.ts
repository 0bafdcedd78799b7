import { DYNAMIC_TASK_CLASS, taskNameOf, type AnyTaskClass, type TaskRegistry } from "../../tasks/registry.ts";
import type { CompileProblem, CompiledPackage, LoadedPackage } from "./compiler/index.ts";
import { position } from "./compiler/lines.ts";

/** A task class a loaded package's schema exports, with where it is declared. */
export interface PackageTaskClass {
  readonly name: string;
  readonly taskClass: AnyTaskClass;
  readonly schema: string;
  readonly exportName: string;
}

/** The classes with a run method that a loaded package's schemas export, with their task names. */
export function packageTaskClasses(loaded: LoadedPackage): PackageTaskClass[] {
  const found: PackageTaskClass[] = [];
  for (const [schema, module] of Object.entries(loaded.modules)) {
    for (const [exportName, value] of Object.entries(module)) {
      if (typeof value !== "function" || typeof (value as { prototype?: { run?: unknown } }).prototype?.run !== "function") continue;
      let name: string;
      try {
        name = taskNameOf(value as AnyTaskClass);
      } catch {
        continue; // not a nameable class: Task.startNew says why when it is started
      }
      found.push({ name, taskClass: value as AnyTaskClass, schema, exportName });
    }
  }
  return found;
}

/**
 * The package that declares a loaded class (the loader marks each class with the first build that
 * exports it: a class a schema re-exports from a dependency stays the dependency's); null if unmarked.
 */
export function declaringPackage(taskClass: AnyTaskClass): string | null {
  const mark = Object.hasOwn(taskClass, DYNAMIC_TASK_CLASS) ? (taskClass as unknown as Record<symbol, { packageName?: unknown }>)[DYNAMIC_TASK_CLASS] : undefined;
  return typeof mark?.packageName === "string" ? mark.packageName : null;
}

/** Who else runs tasks of a name: the application's registered classes and the other packages' newest builds. */
export interface TaskNameOwners {
  readonly registry: TaskRegistry;
  /** The other packages' newest builds, loaded (those that fail to load are left out). */
  readonly otherPackages: readonly LoadedPackage[];
}

/**
 * What is wrong with the task names of a build about to be published: a task runs the class its
 * name resolves to, so a name must belong to one class only. Two classes of the build with one
 * name, a name a class the application registers has, or a name another package's newest build
 * uses for a different class would each run the other's code. One problem per class, located
 * where the class is declared in its schema.
 */
export function taskNameProblems(compiled: CompiledPackage, loaded: LoadedPackage, owners: TaskNameOwners): CompileProblem[] {
  const problems: CompileProblem[] = [];
  const seen = new Map<string, PackageTaskClass>();
  const elsewhere = new Map<string, { taskClass: AnyTaskClass; packageName: string }>();
  for (const other of owners.otherPackages) {
    for (const c of packageTaskClasses(other)) {
      // Only classes the other package declares: one it re-exports is its dependency's (maybe this package's).
      if (declaringPackage(c.taskClass) === other.packageName && !elsewhere.has(c.name)) elsewhere.set(c.name, { taskClass: c.taskClass, packageName: other.packageName });
    }
  }
  const problem = (c: PackageTaskClass, message: string): void => {
    problems.push({ schema: c.schema, ...declaredAt(compiled, c), message: `${message}; give one of them a distinct static taskName` });
  };
  for (const c of packageTaskClasses(loaded)) {
    // A class re-exported from a dependency is checked when the dependency is published.
    if (declaringPackage(c.taskClass) !== loaded.packageName) continue;
    const earlier = seen.get(c.name);
    if (earlier) {
      if (earlier.taskClass !== c.taskClass) problem(c, `task class ${c.exportName} has the task name "${c.name}", as ${earlier.exportName} of schema ${earlier.schema} has`);
      continue;
    }
    seen.set(c.name, c);
    const registered = owners.registry.resolve(c.name);
    if (registered && registered.taskClass !== c.taskClass) {
      problem(c, `task class ${c.exportName} has the task name "${c.name}", which a task class of the application already has`);
      continue;
    }
    const other = elsewhere.get(c.name);
    if (other && other.taskClass !== c.taskClass) {
      problem(c, `task class ${c.exportName} has the task name "${c.name}", which a task class of package ${other.packageName} already has`);
    }
  }
  return problems;
}

/** The line and column of `class <exportName>` (or of the name's first mention) in the schema's text; 1:1 when not found. */
function declaredAt(compiled: CompiledPackage, c: PackageTaskClass): { line: number; column: number } {
  const source = compiled.schemas.find((s) => s.name === c.schema)?.source ?? "";
  const name = c.exportName.replace(/[$]/g, "\\$&");
  const match = new RegExp(`(?<![\\w$])class\\s+${name}(?![\\w$])`, "u").exec(source) ?? new RegExp(`(?<![\\w$])${name}(?![\\w$])`, "u").exec(source);
  // Counted as the compiler counts its problems' lines (\r\n, \r, U+2028 and U+2029 too).
  return match ? position(source, match.index) : { line: 1, column: 1 };
}
