import { readdirSync, readFileSync } from "node:fs";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Reads the numbered, forward-only migrations `NNNN_name.sql` of a folder, in order. */
export function loadMigrations(folder: URL): Migration[] {
  const files = readdirSync(folder).filter((f) => f.endsWith(".sql")).sort();
  return files.map((file) => {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file ${file} is not named NNNN_name.sql`);
    return { version: Number(match[1]), name: match[2] ?? file, sql: readFileSync(new URL(file, folder), "utf8") };
  });
}
