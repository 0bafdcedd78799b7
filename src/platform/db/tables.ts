/** The platform's tables as Kysely sees them. Times are Date on write; see values.ts on read. */
type Time = Date | number | null;

export interface ContactTable {
  Id: string;
  Name: string;
  CreatedOn: Time;
  CreatedById: string | null;
  ModifiedOn: Time;
  ModifiedById: string | null;
}

export interface SysAdminUnitTable {
  Id: string;
  Name: string;
  /** loginKey(Name): the login without regard to case; null for logins that shared a key when keys came in (found only as typed). */
  NameKey: string | null;
  ContactId: string;
  Culture: string;
  TimeZone: string;
  Active: boolean | number;
  PasswordHash: string | null;
  CreatedOn: Time;
  CreatedById: string | null;
  ModifiedOn: Time;
  ModifiedById: string | null;
}

export interface SysProcessLogTable {
  Id: string;
  ProcessCode: string;
  Title: string;
  PackageName: string;
  BuildVersion: number;
  OwnerId: string;
  Status: string;
  Parameters: string;
  ErrorMessage: string | null;
  TaskId: string | null;
  StartedOn: Time;
  CompletedOn: Time;
}

export interface SysProcessElementLogTable {
  Id: string;
  ProcessLogId: string;
  Seq: number;
  ElementId: string;
  ElementName: string;
  Kind: string;
  Status: string;
  Waiting: boolean | number;
  /** Waiting for tasks (context.waitForTask), through the instance's continuation; false for a script that returned false. */
  AwaitsTasks: boolean | number;
  ErrorMessage: string | null;
  StartedOn: Time;
  CompletedOn: Time;
}

export interface PlatformTables {
  SysPackage: { Id: string; Name: string; Description: string | null; Dependencies: string; CreatedOn: Time; ModifiedOn: Time };
  SysSchema: { Id: string; PackageId: string; Name: string; Kind: string; Caption: string | null; Body: string; ModifiedOn: Time; ModifiedById: string | null };
  SysPackageBuild: { Id: string; PackageId: string; Version: number; Code: string; Manifest: string; CreatedOn: Time; CreatedById: string | null };
  SysProcessLog: SysProcessLogTable;
  SysProcessElementLog: SysProcessElementLogTable;
  Contact: ContactTable;
  SysAdminUnit: SysAdminUnitTable;
  SysRole: { Id: string; Name: string };
  SysUserInRole: { UserId: string; RoleId: string };
  SysSchemaRight: {
    RoleId: string;
    SchemaName: string;
    CanRead: boolean | number;
    CanInsert: boolean | number;
    CanUpdate: boolean | number;
    CanDelete: boolean | number;
  };
  SysSession: { Id: string; UserId: string; CsrfToken: string; CreatedOn: Time; ExpiresOn: Time };
  /** Failed sign-ins in the current window, per `login:<name>` and `address:<ip>`. */
  SysSignInThrottle: { Key: string; Failures: number; WindowStart: Time };
  /** How many records of each entity schema were deleted: what tells pages that a record went. */
  SysEntityDeletion: { SchemaName: string; Deletions: number };
}
