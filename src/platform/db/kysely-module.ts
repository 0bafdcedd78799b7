/**
 * The values of Kysely the platform uses, loaded from its CommonJS build. Under the TypeScript
 * loader that runs the project (tsx), which every task thread also boots with, each module of a
 * package's ESM build goes through the loader's hooks: Kysely's ~400-file ESM build cost 454 ms of
 * CPU to import, its CommonJS build 182 ms, in the worker process and again in each thread.
 * Types still come from "kysely" (type imports load nothing); its objects are recognised by shape,
 * so `sql` fragments from either build work together.
 */
import { createRequire } from "node:module";

const kysely = createRequire(import.meta.url)("kysely") as typeof import("kysely");

export const {
  Kysely,
  sql,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} = kysely;
