/** Well-known ids of the platform, as the platform documents them (GUIDs are stored lowercase). */
export const ActivityConsts = {
  /** ActivityType "Task". */
  TaskTypeUId: "fbe0acdc-cfc0-df11-b00f-001d60e938c6",
  /** The platform's documents also spell it TaskTypeUID. */
  TaskTypeUID: "fbe0acdc-cfc0-df11-b00f-001d60e938c6",
  /** ActivityCategory "To do". */
  TaskCategoryId: "f51c4643-58e6-df11-971b-001d60e938c6",
} as const;

export const ActivityStatusIds = {
  NotStarted: "384d4b84-58e6-df11-971b-001d60e938c6",
  InProgress: "394d4b84-58e6-df11-971b-001d60e938c6",
  Completed: "4bdbb88f-58e6-df11-971b-001d60e938c6",
  Canceled: "201cfba8-58e6-df11-971b-001d60e938c6",
} as const;

export const ActivityPriorityIds = {
  Medium: "ab96fa02-7fe6-df11-971b-001d60e938c6",
} as const;

/** The seeded administrator and the built-in roles. */
export const SystemIds = {
  SupervisorUserId: "7f3b869f-34f3-4f20-ab4d-7480a5fdf647",
  SupervisorContactId: "410006e1-ca4e-4502-a9ec-e54d922d2c00",
  SystemAdministratorsRoleId: "83a43ebc-f36b-1410-298d-001e8c82bcad",
  AllEmployeesRoleId: "a29a3ba5-4b0d-de11-9a51-005056c00008",
} as const;

/** A GUID in its stored form (lowercase), or null when the text is not a GUID. */
export function normalizeGuid(value: unknown): string | null {
  return typeof value === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
    ? value.toLowerCase()
    : null;
}
