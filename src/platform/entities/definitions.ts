import { ActivityConsts, ActivityPriorityIds, ActivityStatusIds } from "../constants.ts";
import type { ColumnDefinition, EntitySchemaDefinition } from "./schema.ts";

const audit: readonly ColumnDefinition[] = [
  { name: "CreatedOn", type: "datetime", default: { source: "currentDateTime" } },
  { name: "CreatedBy", type: "lookup", referenceSchema: "Contact", default: { source: "currentUserContact" } },
  { name: "ModifiedOn", type: "datetime", default: { source: "currentDateTime" } },
  { name: "ModifiedBy", type: "lookup", referenceSchema: "Contact", default: { source: "currentUserContact" } },
];

const id: ColumnDefinition = { name: "Id", type: "guid", required: true, default: { source: "newId" } };

function lookupSchema(name: string): EntitySchemaDefinition {
  return { name, columns: [id, { name: "Name", type: "text", required: true }], primaryDisplayColumn: "Name" };
}

/** The schemas of the platform slice: Contact, Activity and its lookups. */
export const BASE_SCHEMAS: readonly EntitySchemaDefinition[] = [
  { name: "Contact", columns: [id, { name: "Name", type: "text", required: true }, ...audit], primaryDisplayColumn: "Name" },
  lookupSchema("ActivityType"),
  lookupSchema("ActivityCategory"),
  lookupSchema("ActivityStatus"),
  lookupSchema("ActivityPriority"),
  {
    name: "Activity",
    recordRights: true,
    primaryDisplayColumn: "Title",
    columns: [
      id,
      { name: "Title", type: "text", required: true },
      { name: "Type", type: "lookup", referenceSchema: "ActivityType", default: { source: "constant", value: ActivityConsts.TaskTypeUId } },
      {
        name: "ActivityCategory",
        caption: "Category",
        type: "lookup",
        referenceSchema: "ActivityCategory",
        default: { source: "constant", value: ActivityConsts.TaskCategoryId },
      },
      { name: "Status", type: "lookup", referenceSchema: "ActivityStatus", default: { source: "constant", value: ActivityStatusIds.NotStarted } },
      { name: "Priority", type: "lookup", referenceSchema: "ActivityPriority", default: { source: "constant", value: ActivityPriorityIds.Medium } },
      { name: "Owner", type: "lookup", referenceSchema: "Contact", default: { source: "currentUserContact" } },
      { name: "Author", type: "lookup", referenceSchema: "Contact", default: { source: "currentUserContact" } },
      { name: "StartDate", type: "datetime", default: { source: "currentDateTime" } },
      { name: "DueDate", type: "datetime", default: { source: "currentDateTime" } },
      ...audit,
    ],
  },
];
