/**
 * Connection settings: the parsed connection string, the schema name, and the words used for
 * them in descriptions and errors. No password ever leaves this file.
 */
import { createRequire } from "node:module";
import type pg from "pg";

/**
 * node-postgres, loaded when a PostgreSQL store is first opened: a process on SQLite, and a
 * task thread (it borrows its process's store), never pay for loading it.
 */
let pgLoaded: typeof pg | null = null;
export function pgModule(): typeof pg {
  return (pgLoaded ??= createRequire(import.meta.url)("pg") as typeof pg);
}

/** Where a driver connects, as shown in logs and errors. */
export interface PostgresTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Kept only to scrub it from error messages. */
  readonly password: string;
}

/** Parses a `postgres://` or `postgresql://` URL; the error never repeats the string itself. */
export function parseConnectionString(connectionString: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(connectionString.trim());
  } catch {
    throw new Error(
      "the PostgreSQL connection string is not a URL: expected postgres://user:password@host:port/database",
    );
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new Error(
      `the PostgreSQL connection string has the scheme ${JSON.stringify(url.protocol)}: expected postgres:// or postgresql://`,
    );
  }
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const user = decode(url.username) || url.searchParams.get("user") || process.env.PGUSER || "";
  // A host parameter (a socket folder, say) wins over the URL's host, as in libpq and pg.
  const host = url.searchParams.get("host") || decode(url.hostname) || "localhost";
  const port = Number(url.port || url.searchParams.get("port") || 5432);
  const database = decode(url.pathname.replace(/^\//, "")) || url.searchParams.get("dbname") || user;
  const password = decode(url.password) || url.searchParams.get("password") || "";
  return { host, port, database, user, password };
}

/** `postgres://user:***@host:port/database`, the password masked. */
export function describeTarget(target: PostgresTarget): string {
  const who = target.user ? `${target.user}${target.password ? ":***" : ""}@` : "";
  return `postgres://${who}${target.host}:${target.port}/${target.database}`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** PostgreSQL keeps 63 bytes of a name (NAMEDATALEN - 1); a longer one would be cut silently. */
const MAX_IDENTIFIER_BYTES = 63;

/** Checks a schema name and returns it quoted, ready to put in SQL. */
export function quoteSchema(schema: string): string {
  if (
    !IDENTIFIER.test(schema) ||
    Buffer.byteLength(schema) > MAX_IDENTIFIER_BYTES ||
    schema.startsWith("pg_")
  ) {
    throw new Error(
      `the PostgreSQL schema ${JSON.stringify(schema)} is not a plain identifier: use 1 to 63 letters, digits and underscores, ` +
        `not starting with a digit or "pg_"`,
    );
  }
  return `"${schema.replace(/"/g, '""')}"`;
}

/** A connection failure, naming the server but never the password. */
export function connectionError(target: PostgresTarget, error: unknown): Error {
  let reason = error instanceof Error ? error.message : String(error);
  if (target.password) reason = reason.split(target.password).join("***");
  const who = target.user ? ` as user ${target.user}` : "";
  return new Error(
    `cannot connect to PostgreSQL at ${target.host}:${target.port} (database ${target.database}${who}): ${reason}`,
    { cause: error },
  );
}
