/**
 * The package compiler: what Publish does with a package's saved texts.
 *
 *   compilePackage(input)   type-checks the Source code schemas and the business-process scripts
 *                           and conditions with the TypeScript compiler (strict, against the real
 *                           "underway" API), then bundles them with esbuild into one CommonJS
 *                           script. Any problem throws PackageCompileError with every problem
 *                           located in its schema (or script) text; the caller keeps the previous
 *                           build in use.
 *   loadPackage(compiled)   evaluates the bundle and hands out its schema modules and its script
 *                           and condition functions.
 *
 * What package code may import: "underway" (the platform API), its own schemas ("./UsrX" or
 * "UsrX") and the schemas of the packages it depends on (by name). Anything else (node:fs, npm
 * packages, relative paths) is a compile problem, and the loader's require refuses it too.
 *
 * Scripts: each process with scripts or conditions becomes one generated module. A script body is
 * the body of `async function (context: ScriptContext): Promise<boolean>`, a condition the operand
 * of `return` in `function (context: ScriptContext): boolean`. In scope: the exports of the
 * element's usings (schemas), and every export of "underway" (Task, Activity, ActivityConsts,
 * UserConnection, ... and its types) that no using shadows.
 */
import { isValidName, PLATFORM_MODULE, SchemaScope } from "./names.ts";
import { deepestNesting, isStackOverflow } from "./nesting.ts";
import { PackageCompileError, type CompiledPackage, type CompileInput, type CompileProblem } from "./types.ts";

export { LOAD_LIMIT_MS, loadPackage, type LoadOptions } from "./load.ts";
export { checkLoadInThread } from "./load-check.ts";
export {
  PackageCompileError,
  PackageLoadError,
  PackageLoadTimeoutError,
  type CompiledPackage,
  type CompileInput,
  type CompileProblem,
  type LoadedPackage,
  type ProcessCondition,
  type ProcessScript,
  type ScriptContext,
  type SourceSchema,
} from "./types.ts";

/**
 * The problem of a package the compiler ran out of stack on: located where its texts nest deepest
 * (schemas, scripts and conditions alike).
 */
function tooDeep(input: CompileInput): CompileProblem {
  const texts = [
    ...input.schemas.map((s) => ({ schema: s.name, text: s.source })),
    ...input.scripts.map((s) => ({ schema: `${s.processCode}/${s.elementId}`, text: s.body })),
    ...input.conditions.map((c) => ({ schema: `${c.processCode}/${c.flowId}`, text: c.expression })),
  ];
  let found = { schema: input.packageName, depth: 0, line: 1, column: 1 };
  for (const { schema, text } of texts) {
    const deepest = deepestNesting(text);
    if (deepest.depth > found.depth) found = { schema, ...deepest };
  }
  const { schema, line, column, depth } = found;
  // Brackets this shallow are not what overflowed (a chain of operators thousands long, say): the
  // longest text is named, at its start.
  if (depth < 100) {
    const longest = texts.reduce((a, b) => (b.text.length > a.text.length ? b : a), { schema: input.packageName, text: "" });
    return { schema: longest.schema, line: 1, column: 1, message: "the code is too deeply nested for the compiler (it ran out of stack): split long expressions or types into smaller ones" };
  }
  return {
    schema,
    line,
    column,
    message: `the code nests too deeply for the compiler (it ran out of stack; the deepest nesting, ${depth} levels of brackets, is here): split the expression or type into smaller ones`,
  };
}

/** Problems with the names of a package, its schemas and its dependencies. */
function checkNames(input: CompileInput): CompileProblem[] {
  const problems: CompileProblem[] = [];
  const at = (schema: string, message: string): void => void problems.push({ schema, line: 1, column: 1, message });
  const { packageName } = input;
  if (!isValidName(packageName) || packageName === PLATFORM_MODULE) {
    at(packageName, `package name "${packageName}" is not valid: use letters, digits and _, starting with a letter`);
  }
  const seen = new Set<string>();
  for (const schema of input.schemas) {
    if (!isValidName(schema.name)) at(schema.name, `schema name "${schema.name}" is not valid: use letters, digits and _, starting with a letter`);
    else if (seen.has(schema.name)) at(schema.name, `package ${packageName} has two schemas named ${schema.name}`);
    seen.add(schema.name);
  }
  for (const dependency of input.dependencies ?? []) {
    if (dependency.packageName === packageName) at(packageName, `package ${packageName} cannot depend on itself`);
  }
  return problems;
}

/**
 * Compiles a package (Publish). Throws PackageCompileError listing every problem; on success the
 * result holds the bundle, each schema's export names and the schema texts it was built from.
 */
export async function compilePackage(input: CompileInput): Promise<CompiledPackage> {
  const { packageName } = input;
  const nameProblems = checkNames(input);
  if (nameProblems.length > 0) throw new PackageCompileError(packageName, nameProblems);

  const scope = new SchemaScope(packageName, input.schemas, input.dependencies ?? []);
  // The TypeScript compiler and esbuild load on the first publish only: a process (or an isolated
  // task's thread) that never publishes does not carry them.
  const [{ typeCheckPackage }, { bundlePackage }] = await Promise.all([import("./typecheck.ts"), import("./bundle.ts")]);
  let checked: ReturnType<typeof typeCheckPackage>;
  let bundled: Awaited<ReturnType<typeof bundlePackage>>;
  try {
    checked = typeCheckPackage(scope, input.scripts, input.conditions);
    if (checked.problems.length > 0) throw new PackageCompileError(packageName, checked.problems);
    bundled = await bundlePackage(scope, checked.processes);
  } catch (error) {
    if (!isStackOverflow(error)) throw error;
    throw new PackageCompileError(packageName, [tooDeep(input)]);
  }
  if (bundled.problems) throw new PackageCompileError(packageName, bundled.problems);

  return Object.freeze({
    packageName,
    code: bundled.code,
    exports: Object.freeze(checked.exports),
    schemas: Object.freeze(input.schemas.map((s) => Object.freeze({ name: s.name, source: s.source }))),
  });
}
