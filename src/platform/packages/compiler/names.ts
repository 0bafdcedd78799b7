/**
 * Names and import specifiers of package code: which modules a schema may import, and where each
 * resolves. Shared by the type-check (TypeScript) and bundle (esbuild) steps so both agree.
 */
import type { CompiledPackage, SourceSchema } from "./types.ts";

/** The one module package code may import besides schemas. */
export const PLATFORM_MODULE = "underway";

/** Schema names, process codes and package names: identifiers (they become paths and module names). */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names that would clash with object internals when used as keys. */
const RESERVED_NAMES = new Set(["__proto__", "constructor", "prototype"]);

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name) && !RESERVED_NAMES.has(name);
}

/** The schema name an import specifier names ("./UsrActivityData", "UsrActivityData", "./UsrActivityData.ts"), if any. */
export function schemaNameOf(specifier: string): string | undefined {
  let name = specifier.startsWith("./") ? specifier.slice(2) : specifier;
  name = name.replace(/\.(?:ts|js)$/, "");
  return isValidName(name) ? name : undefined;
}

/** The virtual file of a schema, as the type-checker sees it. */
export function schemaPath(packageName: string, schema: string): string {
  return `/${packageName}/${schema}.ts`;
}

/** The virtual file holding one process's scripts and conditions. */
export function processPath(packageName: string, processCode: string): string {
  return `/${packageName}/$process/${processCode}.ts`;
}

/** Where an import of package code goes. */
export type ImportTarget =
  | { readonly kind: "platform" }
  | { readonly kind: "schema"; readonly packageName: string; readonly schema: string }
  | { readonly kind: "missing"; readonly schema: string }
  | { readonly kind: "refused" };

/**
 * The schemas visible to one compile: the package's own, then each dependency's. A name is looked
 * up in the importer's own package first, then in the dependencies in the order given.
 */
export class SchemaScope {
  readonly own: ReadonlyMap<string, SourceSchema>;
  private readonly packages = new Map<string, ReadonlyMap<string, SourceSchema>>();

  constructor(
    readonly packageName: string,
    schemas: readonly SourceSchema[],
    readonly dependencies: readonly CompiledPackage[],
  ) {
    this.own = new Map(schemas.map((s) => [s.name, s]));
    this.packages.set(packageName, this.own);
    for (const dependency of dependencies) {
      if (!this.packages.has(dependency.packageName)) {
        this.packages.set(dependency.packageName, new Map(dependency.schemas.map((s) => [s.name, s])));
      }
    }
  }

  /** Every package of the scope, own first. */
  entries(): IterableIterator<[string, ReadonlyMap<string, SourceSchema>]> {
    return this.packages.entries();
  }

  /** Where `specifier`, imported by code of package `importer`, resolves. */
  resolve(specifier: string, importer: string): ImportTarget {
    if (specifier === PLATFORM_MODULE) return { kind: "platform" };
    const schema = schemaNameOf(specifier);
    if (schema === undefined) return { kind: "refused" };
    if (this.packages.get(importer)?.has(schema)) return { kind: "schema", packageName: importer, schema };
    for (const [packageName, schemas] of this.packages) {
      // A dependency never sees the package that depends on it.
      if (packageName === importer || (importer !== this.packageName && packageName === this.packageName)) continue;
      if (schemas.has(schema)) return { kind: "schema", packageName, schema };
    }
    return { kind: "missing", schema };
  }
}

/** Why an import was refused, in words a package developer can act on. */
export function importProblem(specifier: string, target: ImportTarget, importer: string): string | undefined {
  if (target.kind === "missing") {
    return `cannot import "${specifier}": package ${importer} has no schema ${target.schema}, and neither has any package it depends on`;
  }
  if (target.kind === "refused") return refusedImportMessage(specifier);
  return undefined;
}

export function refusedImportMessage(specifier: string): string {
  return `package code cannot import "${specifier}": a package may import only "${PLATFORM_MODULE}", its own schemas and the schemas of the packages it depends on`;
}
