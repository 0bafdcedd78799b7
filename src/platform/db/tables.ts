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

export interface PlatformTables {
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
}
