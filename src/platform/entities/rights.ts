import type { Kysely } from "kysely";
import type { PlatformTables } from "../db/tables.ts";
import { toBoolean } from "../db/values.ts";

export type Operation = "read" | "insert" | "update" | "delete";

export interface SchemaRights {
  readonly read: boolean;
  readonly insert: boolean;
  readonly update: boolean;
  readonly delete: boolean;
}

const ALL: SchemaRights = { read: true, insert: true, update: true, delete: true };

/** Object rights: what a user's roles may do with a schema's records. Administrators may do all. */
export async function schemaRightsOf(
  db: Kysely<PlatformTables>,
  user: { readonly isAdmin: boolean; readonly roleIds: readonly string[] },
  schemaName: string,
): Promise<SchemaRights> {
  if (user.isAdmin) return ALL;
  if (user.roleIds.length === 0) return { read: false, insert: false, update: false, delete: false };
  const rows = await db
    .selectFrom("SysSchemaRight")
    .select(["CanRead", "CanInsert", "CanUpdate", "CanDelete"])
    .where("SchemaName", "=", schemaName)
    .where("RoleId", "in", [...user.roleIds])
    .execute();
  return {
    read: rows.some((r) => toBoolean(r.CanRead)),
    insert: rows.some((r) => toBoolean(r.CanInsert)),
    update: rows.some((r) => toBoolean(r.CanUpdate)),
    delete: rows.some((r) => toBoolean(r.CanDelete)),
  };
}
