import type { Kysely } from "kysely";
import { sql } from "./kysely-module.ts";
import { ActivityConsts, ActivityPriorityIds, ActivityStatusIds, SystemIds } from "../constants.ts";
import type { PlatformMigration } from "./migrate.ts";
import { loginKey } from "../users/login-key.ts";

type Dialect = "sqlite" | "postgres";

/** Column types per store: GUIDs are lowercase text; times are ms (SQLite) or timestamptz. */
const timeType = (dialect: Dialect) => (dialect === "postgres" ? "timestamptz" : "integer");

async function lookup(db: Kysely<unknown>, dialect: Dialect, table: string, rows: readonly [string, string][]): Promise<void> {
  await db.schema
    .createTable(table)
    .addColumn("Id", "text", (c) => c.primaryKey())
    .addColumn("Name", "text", (c) => c.notNull())
    .addColumn("CreatedOn", timeType(dialect))
    .execute();
  for (const [id, name] of rows) {
    await sql`INSERT INTO ${sql.table(table)} ("Id", "Name") VALUES (${id}, ${name})`.execute(db);
  }
}

/** Adds the audit columns every entity table has. */
function audited<T extends { addColumn: (name: string, type: "text" | "integer" | "timestamptz") => T }>(builder: T, dialect: Dialect): T {
  return builder
    .addColumn("CreatedOn", timeType(dialect))
    .addColumn("CreatedById", "text")
    .addColumn("ModifiedOn", timeType(dialect))
    .addColumn("ModifiedById", "text");
}

export const PLATFORM_MIGRATIONS: readonly PlatformMigration[] = [
  {
    version: 1,
    name: "users_entities_activity",
    async up(db, dialect) {
      await audited(db.schema.createTable("Contact").addColumn("Id", "text", (c) => c.primaryKey()).addColumn("Name", "text", (c) => c.notNull()), dialect).execute();

      await audited(
        db.schema
          .createTable("SysAdminUnit")
          .addColumn("Id", "text", (c) => c.primaryKey())
          .addColumn("Name", "text", (c) => c.notNull().unique())
          .addColumn("ContactId", "text", (c) => c.notNull())
          .addColumn("Culture", "text", (c) => c.notNull().defaultTo("en-US"))
          .addColumn("TimeZone", "text", (c) => c.notNull().defaultTo("UTC"))
          .addColumn("Active", "boolean", (c) => c.notNull().defaultTo(true))
          .addColumn("PasswordHash", "text"),
        dialect,
      ).execute();

      await db.schema.createTable("SysRole").addColumn("Id", "text", (c) => c.primaryKey()).addColumn("Name", "text", (c) => c.notNull()).execute();
      await db.schema
        .createTable("SysUserInRole")
        .addColumn("UserId", "text", (c) => c.notNull())
        .addColumn("RoleId", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("SysUserInRole_pk", ["UserId", "RoleId"])
        .execute();
      await db.schema
        .createTable("SysSchemaRight")
        .addColumn("RoleId", "text", (c) => c.notNull())
        .addColumn("SchemaName", "text", (c) => c.notNull())
        .addColumn("CanRead", "boolean", (c) => c.notNull())
        .addColumn("CanInsert", "boolean", (c) => c.notNull())
        .addColumn("CanUpdate", "boolean", (c) => c.notNull())
        .addColumn("CanDelete", "boolean", (c) => c.notNull())
        .addPrimaryKeyConstraint("SysSchemaRight_pk", ["RoleId", "SchemaName"])
        .execute();
      await db.schema
        .createTable("SysSession")
        .addColumn("Id", "text", (c) => c.primaryKey()) // sha256 of the token; the token itself is never stored
        .addColumn("UserId", "text", (c) => c.notNull())
        .addColumn("CsrfToken", "text", (c) => c.notNull())
        .addColumn("CreatedOn", timeType(dialect), (c) => c.notNull())
        .addColumn("ExpiresOn", timeType(dialect), (c) => c.notNull())
        .execute();

      await lookup(db, dialect, "ActivityType", [[ActivityConsts.TaskTypeUId, "Task"]]);
      await lookup(db, dialect, "ActivityCategory", [[ActivityConsts.TaskCategoryId, "To do"]]);
      await lookup(db, dialect, "ActivityStatus", [
        [ActivityStatusIds.NotStarted, "Not started"],
        [ActivityStatusIds.InProgress, "In progress"],
        [ActivityStatusIds.Completed, "Completed"],
        [ActivityStatusIds.Canceled, "Canceled"],
      ]);
      await lookup(db, dialect, "ActivityPriority", [[ActivityPriorityIds.Medium, "Medium"]]);

      await audited(
        db.schema
          .createTable("Activity")
          .addColumn("Id", "text", (c) => c.primaryKey())
          .addColumn("Title", "text", (c) => c.notNull())
          .addColumn("TypeId", "text")
          .addColumn("ActivityCategoryId", "text")
          .addColumn("StatusId", "text")
          .addColumn("PriorityId", "text")
          .addColumn("OwnerId", "text")
          .addColumn("AuthorId", "text")
          .addColumn("StartDate", timeType(dialect))
          .addColumn("DueDate", timeType(dialect)),
        dialect,
      ).execute();
      await db.schema.createIndex("Activity_CreatedOn").on("Activity").columns(["CreatedOn desc", "Id desc"]).execute();
      await db.schema.createIndex("Activity_Owner").on("Activity").columns(["OwnerId", "CreatedOn desc"]).execute();

      // The built-in roles, the Supervisor administrator (password set at first start), rights.
      const roles: [string, string][] = [
        [SystemIds.SystemAdministratorsRoleId, "System administrators"],
        [SystemIds.AllEmployeesRoleId, "All employees"],
      ];
      for (const [id, name] of roles) await sql`INSERT INTO ${sql.table("SysRole")} ("Id", "Name") VALUES (${id}, ${name})`.execute(db);
      await sql`INSERT INTO ${sql.table("Contact")} ("Id", "Name") VALUES (${SystemIds.SupervisorContactId}, ${"Supervisor"})`.execute(db);
      await sql`INSERT INTO ${sql.table("SysAdminUnit")} ("Id", "Name", "ContactId", "Active") VALUES (${SystemIds.SupervisorUserId}, ${"Supervisor"}, ${SystemIds.SupervisorContactId}, ${dialect === "postgres" ? sql`true` : sql`1`})`.execute(db);
      for (const role of [SystemIds.SystemAdministratorsRoleId, SystemIds.AllEmployeesRoleId]) {
        await sql`INSERT INTO ${sql.table("SysUserInRole")} ("UserId", "RoleId") VALUES (${SystemIds.SupervisorUserId}, ${role})`.execute(db);
      }
      const yes = dialect === "postgres" ? sql`true` : sql`1`;
      const no = dialect === "postgres" ? sql`false` : sql`0`;
      const rights: [string, boolean, boolean, boolean, boolean][] = [
        ["Activity", true, true, true, true],
        ["Contact", true, false, false, false],
        ["ActivityType", true, false, false, false],
        ["ActivityCategory", true, false, false, false],
        ["ActivityStatus", true, false, false, false],
        ["ActivityPriority", true, false, false, false],
      ];
      for (const [schema, r, i, u, d] of rights) {
        await sql`INSERT INTO ${sql.table("SysSchemaRight")} ("RoleId", "SchemaName", "CanRead", "CanInsert", "CanUpdate", "CanDelete")
                  VALUES (${SystemIds.AllEmployeesRoleId}, ${schema}, ${r ? yes : no}, ${i ? yes : no}, ${u ? yes : no}, ${d ? yes : no})`.execute(db);
      }
    },
  },
  {
    version: 2,
    name: "packages_processes",
    async up(db, dialect) {
      const time = timeType(dialect);
      await db.schema
        .createTable("SysPackage")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("Name", "text", (c) => c.notNull().unique())
        .addColumn("Description", "text")
        .addColumn("Dependencies", "text", (c) => c.notNull().defaultTo("[]"))
        .addColumn("CreatedOn", time)
        .addColumn("ModifiedOn", time)
        .execute();
      await db.schema
        .createTable("SysSchema")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("PackageId", "text", (c) => c.notNull())
        .addColumn("Name", "text", (c) => c.notNull())
        .addColumn("Kind", "text", (c) => c.notNull())
        .addColumn("Caption", "text")
        .addColumn("Body", "text", (c) => c.notNull())
        .addColumn("ModifiedOn", time)
        .addColumn("ModifiedById", "text")
        .addUniqueConstraint("SysSchema_package_name", ["PackageId", "Name"])
        .execute();
      await db.schema
        .createTable("SysPackageBuild")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("PackageId", "text", (c) => c.notNull())
        .addColumn("Version", "integer", (c) => c.notNull())
        .addColumn("Code", "text", (c) => c.notNull())
        .addColumn("Manifest", "text", (c) => c.notNull())
        .addColumn("CreatedOn", time)
        .addColumn("CreatedById", "text")
        .addUniqueConstraint("SysPackageBuild_package_version", ["PackageId", "Version"])
        .execute();
      await db.schema
        .createTable("SysProcessLog")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("ProcessCode", "text", (c) => c.notNull())
        .addColumn("Title", "text", (c) => c.notNull())
        .addColumn("PackageName", "text", (c) => c.notNull())
        .addColumn("BuildVersion", "integer", (c) => c.notNull())
        .addColumn("OwnerId", "text", (c) => c.notNull())
        .addColumn("Status", "text", (c) => c.notNull())
        .addColumn("Parameters", "text", (c) => c.notNull().defaultTo("{}"))
        .addColumn("ErrorMessage", "text")
        .addColumn("TaskId", "text")
        .addColumn("StartedOn", time)
        .addColumn("CompletedOn", time)
        .execute();
      await db.schema.createIndex("SysProcessLog_StartedOn").on("SysProcessLog").columns(["StartedOn desc", "Id"]).execute();
      await db.schema
        .createTable("SysProcessElementLog")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("ProcessLogId", "text", (c) => c.notNull())
        .addColumn("Seq", "integer", (c) => c.notNull())
        .addColumn("ElementId", "text", (c) => c.notNull())
        .addColumn("ElementName", "text", (c) => c.notNull())
        .addColumn("Kind", "text", (c) => c.notNull())
        .addColumn("Status", "text", (c) => c.notNull())
        .addColumn("Waiting", "boolean", (c) => c.notNull().defaultTo(false))
        .addColumn("ErrorMessage", "text")
        .addColumn("StartedOn", time)
        .addColumn("CompletedOn", time)
        .addUniqueConstraint("SysProcessElementLog_seq", ["ProcessLogId", "Seq"])
        .execute();
    },
  },
  {
    version: 3,
    name: "activity_modified_on",
    // The web application's change feed asks for the newest ModifiedOn of Activity twice a second:
    // one index lookup instead of a scan.
    async up(db) {
      await db.schema.createIndex("Activity_ModifiedOn").on("Activity").column("ModifiedOn").execute();
    },
  },
  {
    version: 4,
    name: "sign_in_throttle",
    // Failed sign-ins per login and per client address, shared by every node of the database.
    async up(db, dialect) {
      await db.schema
        .createTable("SysSignInThrottle")
        .addColumn("Key", "text", (c) => c.primaryKey())
        .addColumn("Failures", "integer", (c) => c.notNull())
        .addColumn("WindowStart", timeType(dialect), (c) => c.notNull())
        .execute();
      await db.schema.createIndex("SysSignInThrottle_WindowStart").on("SysSignInThrottle").column("WindowStart").execute();
    },
  },
  {
    version: 5,
    name: "schema_name_unique",
    // A schema name belongs to one package. Save checked that before inserting, which two saves
    // at once into two packages could both pass on PostgreSQL; the store now refuses the second.
    async up(db) {
      const duplicates = await sql<{ Name: string }>`SELECT ${sql.ref("Name")} FROM ${sql.table("SysSchema")} GROUP BY ${sql.ref("Name")} HAVING count(*) > 1 ORDER BY 1`.execute(db);
      if (duplicates.rows.length > 0) {
        throw new Error(
          `schema names saved into more than one package: ${duplicates.rows.map((r) => r.Name).join(", ")}; ` +
            `delete or rename all but one of each in "SysSchema" and start again`,
        );
      }
      await db.schema.createIndex("SysSchema_Name").on("SysSchema").column("Name").unique().execute();
    },
  },
  {
    version: 6,
    name: "entity_deletions",
    // The change feed reads the newest ModifiedOn and CreatedOn of Activity, which a delete does
    // not move: a count of deletions per schema does.
    async up(db) {
      await db.schema
        .createTable("SysEntityDeletion")
        .addColumn("SchemaName", "text", (c) => c.primaryKey())
        .addColumn("Deletions", "integer", (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 7,
    name: "login_key",
    // Logins do not depend on case ("supervisor" signs in as the Supervisor): each user gets its
    // login's key, unique. Logins that already differ only in case ("Bob" and "bob") keep no key:
    // each is found as typed, and neither by another case.
    async up(db) {
      await db.schema.alterTable("SysAdminUnit").addColumn("NameKey", "text").execute();
      const users = await sql<{ Id: string; Name: string }>`SELECT ${sql.ref("Id")}, ${sql.ref("Name")} FROM ${sql.table("SysAdminUnit")}`.execute(db);
      const byKey = new Map<string, string[]>();
      for (const { Id, Name } of users.rows) {
        const key = loginKey(Name);
        byKey.set(key, [...(byKey.get(key) ?? []), Id]);
      }
      for (const [key, ids] of byKey) {
        if (ids.length !== 1) continue;
        await sql`UPDATE ${sql.table("SysAdminUnit")} SET ${sql.ref("NameKey")} = ${key} WHERE ${sql.ref("Id")} = ${ids[0]}`.execute(db);
      }
      await db.schema.createIndex("SysAdminUnit_NameKey").on("SysAdminUnit").column("NameKey").unique().execute();
    },
  },
  {
    version: 8,
    name: "process_log_task_and_running",
    // An instance is found by its task when that task dies or is canceled, and the maintenance
    // leader reads the running instances every few seconds while tasks change (the process task
    // watch): index lookups, not scans of a log that keeps every instance ever run.
    async up(db) {
      await db.schema.createIndex("SysProcessLog_TaskId").on("SysProcessLog").column("TaskId").execute();
      await db.schema.createIndex("SysProcessLog_Running").on("SysProcessLog").column("Id").where(sql.ref("Status"), "=", "Running").execute();
    },
  },
  {
    version: 9,
    name: "element_awaits_tasks",
    // An element waiting for tasks is told from one whose script returned false: when the
    // instance's task is deleted, the first can never go on (its continuation is gone), the second
    // waits for good as before. Elements that waited before this are taken for the second.
    async up(db) {
      await db.schema.alterTable("SysProcessElementLog").addColumn("AwaitsTasks", "boolean", (c) => c.notNull().defaultTo(false)).execute();
    },
  },
];
