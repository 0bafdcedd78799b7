/**
 * Type-checking package code with the TypeScript compiler API.
 *
 * Each schema is a virtual file `/<package>/<Schema>.ts`; each process with scripts or conditions
 * is a generated virtual file `/<package>/$process/<ProcessCode>.ts`. An in-memory CompilerHost
 * serves them, and resolves imports of package code itself (see SchemaScope): "underway" goes to
 * the platform's real public API, src/index.ts (found next to this module), so package code is
 * checked against exactly the API it runs with; schema names go to the virtual files. Everything
 * the platform's own files import resolves the ordinary way (their .ts imports, node_modules).
 *
 * Speed: parsing and binding the platform's files, @types/node and the lib files is most of the
 * work of a compile. Their SourceFiles are kept in a module-level cache (checked against the
 * file's mtime) and handed to every new program, together with a module-resolution cache and the
 * previous program as `oldProgram`, so a later compile parses and binds only the package's own
 * files and type-checks only what they use.
 */
import { statSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { CONTEXT_TYPE_NAME, generateProcessModule, type ProcessModule, type Region } from "./generate.ts";
import { position } from "./lines.ts";
import { importProblem, isValidName, PLATFORM_MODULE, processPath, schemaPath, type SchemaScope } from "./names.ts";
import type { CompileProblem, ProcessCondition, ProcessScript } from "./types.ts";

/** The platform's public API, which package code imports as "underway". */
export const PLATFORM_ENTRY = fileURLToPath(new URL("../../../index.ts", import.meta.url));
/** The project root (src/..): the type-checker's current directory, where @types are found. */
const PROJECT_ROOT = dirname(dirname(PLATFORM_ENTRY));

/** Package code is checked in strict mode, as the modules esbuild will compile one by one. */
const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  moduleDetection: ts.ModuleDetectionKind.Force,
  lib: ["lib.es2023.d.ts"],
  types: ["node"],
  strict: true,
  isolatedModules: true,
  esModuleInterop: true,
  skipLibCheck: true,
  allowImportingTsExtensions: true,
  resolveJsonModule: true,
  useDefineForClassFields: true,
  noEmit: true,
  // No lookups of @typescript/lib-* replacement packages.
  libReplacement: false,
};

const useCaseSensitiveFileNames = ts.sys.useCaseSensitiveFileNames;
const canonical = (fileName: string): string => (useCaseSensitiveFileNames ? fileName : fileName.toLowerCase());

// Module-level caches, shared by every compile of this process (see the header comment).
const diskFiles = new Map<string, { mtimeMs: number; key: string; sourceFile: ts.SourceFile }>();
const virtualFiles = new Map<string, { text: string; key: string; sourceFile: ts.SourceFile }>();
const resolutionCache = ts.createModuleResolutionCache(PROJECT_ROOT, canonical, COMPILER_OPTIONS);
/** fileExists/directoryExists answers under node_modules, which do not change while we run. */
const installedPaths = new Map<string, boolean>();
let previousProgram: ts.Program | undefined;
let platformNames: { entry: ts.SourceFile; values: readonly string[]; types: readonly string[] } | undefined;

/** A virtual file and the package whose code it is. */
interface VirtualFile {
  readonly text: string;
  readonly packageName: string;
}

function sourceFileKey(options: ts.ScriptTarget | ts.CreateSourceFileOptions): string {
  return typeof options === "number" ? String(options) : `${options.languageVersion}/${options.impliedNodeFormat ?? ""}`;
}

/** A file-system answer, cached when the path is inside (or is) a node_modules folder. */
function installed(key: string, ask: () => boolean): boolean {
  if (!/\/node_modules(?:\/|$)/.test(key)) return ask();
  let answer = installedPaths.get(key);
  if (answer === undefined) {
    answer = ask();
    installedPaths.set(key, answer);
  }
  return answer;
}

function createHost(files: ReadonlyMap<string, VirtualFile>, scope: SchemaScope): ts.CompilerHost {
  const host: ts.CompilerHost = {
    getSourceFile(fileName, languageVersionOrOptions, onError) {
      const key = sourceFileKey(languageVersionOrOptions);
      const virtual = files.get(fileName);
      if (virtual) {
        const cached = virtualFiles.get(fileName);
        if (cached && cached.text === virtual.text && cached.key === key) return cached.sourceFile;
        const sourceFile = ts.createSourceFile(fileName, virtual.text, languageVersionOrOptions, false, ts.ScriptKind.TS);
        virtualFiles.set(fileName, { text: virtual.text, key, sourceFile });
        return sourceFile;
      }
      let mtimeMs: number;
      try {
        mtimeMs = statSync(fileName).mtimeMs;
      } catch {
        return undefined;
      }
      const cached = diskFiles.get(fileName);
      if (cached && cached.mtimeMs === mtimeMs && cached.key === key) return cached.sourceFile;
      const text = ts.sys.readFile(fileName);
      if (text === undefined) {
        onError?.(`cannot read ${fileName}`);
        return undefined;
      }
      const sourceFile = ts.createSourceFile(fileName, text, languageVersionOrOptions, false);
      diskFiles.set(fileName, { mtimeMs, key, sourceFile });
      return sourceFile;
    },
    getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
    writeFile: () => {},
    getCurrentDirectory: () => PROJECT_ROOT,
    getCanonicalFileName: canonical,
    useCaseSensitiveFileNames: () => useCaseSensitiveFileNames,
    getNewLine: () => "\n",
    fileExists: (fileName) => files.has(fileName) || installed(`f${fileName}`, () => ts.sys.fileExists(fileName)),
    readFile: (fileName) => files.get(fileName)?.text ?? ts.sys.readFile(fileName),
    directoryExists: (directory) => installed(`d${directory}`, () => ts.sys.directoryExists(directory)),
    getModuleResolutionCache: () => resolutionCache,
    getDirectories: (path) => ts.sys.getDirectories(path),
    realpath: (path) => (ts.sys.realpath ? ts.sys.realpath(path) : path),
    // Package code's imports are resolved afresh each compile: the same text may see other dependencies.
    hasInvalidatedResolutions: (path) => files.has(path),
    resolveModuleNameLiterals(literals, containingFile, redirectedReference, options, containingSourceFile) {
      const importer = files.get(containingFile);
      return literals.map((literal): ts.ResolvedModuleWithFailedLookupLocations => {
        if (!importer) {
          const mode = ts.getModeForUsageLocation(containingSourceFile, literal, options);
          return ts.resolveModuleName(literal.text, containingFile, options, host, resolutionCache, redirectedReference, mode);
        }
        const target = scope.resolve(literal.text, importer.packageName);
        const resolvedFileName =
          target.kind === "platform" ? PLATFORM_ENTRY : target.kind === "schema" ? schemaPath(target.packageName, target.schema) : undefined;
        return {
          resolvedModule: resolvedFileName ? { resolvedFileName, extension: ts.Extension.Ts, isExternalLibraryImport: false } : undefined,
        };
      });
    },
  };
  return host;
}

function createProgram(rootNames: readonly string[], host: ts.CompilerHost): ts.Program {
  const program = ts.createProgram({ rootNames, options: COMPILER_OPTIONS, host, oldProgram: previousProgram });
  previousProgram = program;
  return program;
}

/** The export names of a module in source order, split into values (classes, functions, consts, ...) and types only. */
function exportNames(checker: ts.TypeChecker, sourceFile: ts.SourceFile | undefined): { all: string[]; values: string[]; types: string[] } {
  const moduleSymbol = sourceFile ? checker.getSymbolAtLocation(sourceFile) : undefined;
  const symbols = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
  const at = (symbol: ts.Symbol): number => symbol.declarations?.find((d) => d.getSourceFile() === sourceFile)?.pos ?? Number.MAX_SAFE_INTEGER;
  const sorted = [...symbols].sort((a, b) => at(a) - at(b) || a.name.localeCompare(b.name));
  const values: string[] = [];
  const types: string[] = [];
  for (const symbol of sorted) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    (target.flags & ts.SymbolFlags.Value ? values : types).push(symbol.name);
  }
  return { all: sorted.map((s) => s.name), values, types };
}

/** The platform API's export names, cached while src/index.ts is unchanged. */
function platformExports(program: ts.Program): { values: readonly string[]; types: readonly string[] } {
  const entry = program.getSourceFile(PLATFORM_ENTRY);
  if (!entry) throw new Error(`the platform API ${PLATFORM_ENTRY} cannot be read`);
  if (platformNames?.entry !== entry) {
    platformNames = { entry, ...exportNames(program.getTypeChecker(), entry) };
  }
  return platformNames;
}

/**
 * Every module specifier a file names (imports, re-exports, import(), require(), import types),
 * and every import() whose module name is not a string literal: its module is known only when it
 * runs, so the rule about what package code may import could not be checked.
 */
function moduleSpecifiers(sourceFile: ts.SourceFile): { literals: ts.StringLiteralLike[]; computed: ts.CallExpression[] } {
  const found: ts.StringLiteralLike[] = [];
  const computed: ts.CallExpression[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteralLike(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteralLike(node.moduleReference.expression)
    ) {
      found.push(node.moduleReference.expression);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const first = node.arguments[0];
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === "require";
      if ((isImport || isRequire) && first && ts.isStringLiteralLike(first)) found.push(first);
      else if (isImport) computed.push(node);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal);
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return { literals: found, computed };
}

const COMPUTED_IMPORT_MESSAGE =
  `import() must name its module with a string literal: package code may import only "${PLATFORM_MODULE}", its own schemas and the schemas of the packages it depends on`;

/** Diagnostics about a module that cannot be found; replaced by our own import problems. */
const MODULE_NOT_FOUND_CODES = new Set([2307, 2792]);
/** "Function lacks ending return statement ...", "... must return a value." and "Not all code paths return a value." */
const MISSING_RETURN_CODES = new Set([2366, 2355, 7030]);


/** Maps an offset in a process module to the script or condition it belongs to. */
function mapToRegion(module: ProcessModule, offset: number, message: string, code?: number): CompileProblem {
  let region: Region | undefined = module.regions[0];
  for (const r of module.regions) if (r.wrapperStart <= offset) region = r;
  if (!region) return { schema: module.processCode, line: 1, column: 1, message };
  const relative = offset - region.start;
  if (relative >= 0 && relative <= region.text.length && offset < region.wrapperEnd) {
    return { schema: region.owner, ...position(region.text, relative), message };
  }
  if (code !== undefined && MISSING_RETURN_CODES.has(code)) {
    const last = position(region.text, region.text.length).line;
    const what = region.kind === "script" ? "script" : "condition";
    return { schema: region.owner, line: last, column: 1, message: `the ${what} must return a boolean on every path (${message})` };
  }
  // In the generated wrapper (for example a brace missing from the body): the text's first line.
  return { schema: region.owner, line: 1, column: 1, message };
}

/** Checks that each body or expression stayed inside its function (no unbalanced braces). */
function checkRegions(sourceFile: ts.SourceFile, module: ProcessModule): CompileProblem[] {
  const problems: CompileProblem[] = [];
  const functions = new Map<string, ts.FunctionDeclaration>();
  for (const statement of sourceFile.statements) {
    if (ts.isFunctionDeclaration(statement) && statement.name) functions.set(statement.name.text, statement);
  }
  for (const region of module.regions) {
    const body = functions.get(region.functionName)?.body;
    let intact = body !== undefined && body.getStart(sourceFile) === region.openBrace && body.end === region.closeBrace + 1;
    if (intact && body && region.kind === "condition") {
      const only = body.statements[0];
      intact = body.statements.length === 1 && only !== undefined && ts.isReturnStatement(only) && only.end === region.semicolon + 1;
    }
    if (!intact) {
      const message =
        region.kind === "script"
          ? "the script body is not one complete function body (check its braces)"
          : "the condition is not one expression";
      problems.push({ schema: region.owner, line: 1, column: 1, message });
    }
  }
  return problems;
}

export interface TypeCheckResult {
  readonly problems: CompileProblem[];
  /** Export names (values and types, in source order) of the package's own schemas. */
  readonly exports: Record<string, string[]>;
  readonly processes: ProcessModule[];
}

/**
 * Type-checks a package: its schemas, and its scripts and conditions wrapped into process
 * modules. Returns every problem found; the process modules are what the bundle compiles.
 */
export function typeCheckPackage(
  scope: SchemaScope,
  scripts: readonly ProcessScript[],
  conditions: readonly ProcessCondition[],
): TypeCheckResult {
  const packageName = scope.packageName;
  const problems: CompileProblem[] = [];
  const files = new Map<string, VirtualFile>();
  for (const [owner, schemas] of scope.entries()) {
    for (const schema of schemas.values()) files.set(schemaPath(owner, schema.name), { text: schema.source, packageName: owner });
  }
  const host = createHost(files, scope);
  const schemaRoots = [PLATFORM_ENTRY, ...files.keys()];

  // First program: the schemas alone, for their export names (the usings of scripts).
  let program = createProgram(schemaRoots, host);
  let checker = program.getTypeChecker();
  const exports: Record<string, string[]> = {};
  const exportsOf = new Map<string, string[]>();
  const namesOf = (packageOf: string, schema: string): string[] => {
    const path = schemaPath(packageOf, schema);
    let names = exportsOf.get(path);
    if (!names) {
      names = exportNames(checker, program.getSourceFile(path)).all;
      exportsOf.set(path, names);
    }
    return names;
  };
  for (const schema of scope.own.keys()) exports[schema] = namesOf(packageName, schema);

  // Group scripts and conditions by process; build each process's imports from its usings.
  const byProcess = new Map<string, { scripts: ProcessScript[]; conditions: ProcessCondition[] }>();
  const seen = new Set<string>();
  const accept = (processCode: string, id: string, kind: string): boolean => {
    const owner = `${processCode}/${id}`;
    if (!isValidName(processCode)) {
      problems.push({ schema: owner, line: 1, column: 1, message: `process code "${processCode}" is not a valid name (letters, digits and _)` });
      return false;
    }
    if (seen.has(`${kind}\0${owner}`)) {
      problems.push({ schema: owner, line: 1, column: 1, message: `process ${processCode} has two ${kind}s with the id "${id}"` });
      return false;
    }
    seen.add(`${kind}\0${owner}`);
    if (!byProcess.has(processCode)) byProcess.set(processCode, { scripts: [], conditions: [] });
    return true;
  };
  for (const script of scripts) if (accept(script.processCode, script.elementId, "script")) byProcess.get(script.processCode)?.scripts.push(script);
  for (const condition of conditions) {
    if (accept(condition.processCode, condition.flowId, "condition")) byProcess.get(condition.processCode)?.conditions.push(condition);
  }

  const platform = platformExports(program);
  const generated = /^__(?:script|condition)\d+$/;
  const processes: ProcessModule[] = [];
  for (const [processCode, members] of byProcess) {
    // One module per process: the union of its elements' usings is in scope (usings are
    // process-wide on the platform). A name exported by two usings comes from the first.
    const inScope = new Set<string>([CONTEXT_TYPE_NAME]);
    const importLines: string[] = [];
    const usings = new Set<string>();
    for (const element of [...members.scripts, ...members.conditions]) {
      const owner = `${processCode}/${"elementId" in element ? element.elementId : element.flowId}`;
      for (const using of element.usings) {
        const target = scope.resolve(using, packageName);
        if (target.kind !== "schema" || using !== target.schema) {
          problems.push({ schema: owner, line: 1, column: 1, message: `using "${using}" is not a schema of package ${packageName} or of a package it depends on` });
        } else {
          usings.add(using);
        }
      }
    }
    for (const using of usings) {
      const target = scope.resolve(using, packageName);
      if (target.kind !== "schema") continue;
      const names = namesOf(target.packageName, target.schema).filter((n) => n !== "default" && !inScope.has(n) && !generated.test(n));
      names.forEach((n) => inScope.add(n));
      if (names.length > 0) importLines.push(`import { ${names.join(", ")} } from ${JSON.stringify(using)};`);
    }
    const values = platform.values.filter((n) => !inScope.has(n) && !generated.test(n));
    const types = platform.types.filter((n) => !inScope.has(n) && !generated.test(n));
    if (values.length > 0) importLines.push(`import { ${values.join(", ")} } from ${JSON.stringify(PLATFORM_MODULE)};`);
    if (types.length > 0) importLines.push(`import type { ${types.join(", ")} } from ${JSON.stringify(PLATFORM_MODULE)};`);
    const module = generateProcessModule(processCode, members.scripts, members.conditions, importLines);
    processes.push(module);
    files.set(processPath(packageName, processCode), { text: module.text, packageName });
  }

  // Second program: the schemas and the process modules; the one whose diagnostics count.
  if (processes.length > 0) {
    program = createProgram([...schemaRoots, ...processes.map((p) => processPath(packageName, p.processCode))], host);
    checker = program.getTypeChecker();
  }

  for (const diagnostic of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]) {
    problems.push({ schema: packageName, line: 1, column: 1, message: ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n") });
  }

  for (const [path, file] of files) {
    const sourceFile = program.getSourceFile(path);
    if (!sourceFile) continue;
    const module = processes.find((p) => processPath(packageName, p.processCode) === path);
    const schema = path.slice(path.lastIndexOf("/") + 1, -".ts".length);
    const own = file.packageName === packageName;
    const locate = (offset: number, message: string, code?: number): CompileProblem =>
      module ? mapToRegion(module, offset, message, code) : { schema, ...position(file.text, offset), message };

    // Imports: only "underway", schemas of this package and of its dependencies.
    const refused = new Set<number>();
    const fileProblems: CompileProblem[] = [];
    const specifiers = moduleSpecifiers(sourceFile);
    for (const literal of specifiers.literals) {
      const target = scope.resolve(literal.text, file.packageName);
      const message = importProblem(literal.text, target, file.packageName);
      if (message === undefined) continue;
      const start = literal.getStart(sourceFile);
      refused.add(start);
      if (own) {
        fileProblems.push(locate(start, message));
      } else if (target.kind === "missing") {
        // A dependency's import that none of the given packages satisfies.
        fileProblems.push({
          schema,
          ...position(file.text, start),
          message: `${message} (schema ${schema} of dependency ${file.packageName}: give its dependencies to this compile too)`,
        });
      }
    }
    if (own) {
      for (const call of specifiers.computed) fileProblems.push(locate(call.getStart(sourceFile), COMPUTED_IMPORT_MESSAGE));
      const syntactic = program.getSyntacticDiagnostics(sourceFile);
      const diagnostics = [...syntactic, ...program.getSemanticDiagnostics(sourceFile)];
      for (const d of diagnostics) {
        const start = d.start ?? 0;
        if (MODULE_NOT_FOUND_CODES.has(d.code) && refused.has(start)) continue;
        fileProblems.push(locate(start, ts.flattenDiagnosticMessageText(d.messageText, "\n"), d.code));
      }
      if (module && syntactic.length === 0) fileProblems.push(...checkRegions(sourceFile, module));
    }
    problems.push(...fileProblems);
  }

  const order = [
    ...scope.own.keys(),
    ...scripts.map((s) => `${s.processCode}/${s.elementId}`),
    ...conditions.map((c) => `${c.processCode}/${c.flowId}`),
  ];
  return { problems: sortProblems(problems, order), exports, processes };
}

/** Problems grouped by schema or script (in the order given, others after), each group by line and column. */
function sortProblems(problems: readonly CompileProblem[], owners: readonly string[]): CompileProblem[] {
  const order = new Map<string, number>();
  owners.forEach((owner) => order.has(owner) || order.set(owner, order.size));
  problems.forEach((p) => order.has(p.schema) || order.set(p.schema, order.size));
  const unique = new Map<string, CompileProblem>();
  for (const p of problems) unique.set(`${p.schema}\0${p.line}\0${p.column}\0${p.message}`, p);
  return [...unique.values()].sort(
    (a, b) => (order.get(a.schema) ?? 0) - (order.get(b.schema) ?? 0) || a.line - b.line || a.column - b.column,
  );
}
