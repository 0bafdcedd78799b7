import type { UserConnection } from "../user-connection.ts";
import { Entity } from "./entity.ts";

/** Defines camelCase accessors (`typeId`) for column value names (`TypeId`) on an entity class. */
function accessors(target: { prototype: object }, names: readonly string[]): void {
  for (const name of names) {
    const property = name.charAt(0).toLowerCase() + name.slice(1);
    Object.defineProperty(target.prototype, property, {
      get(this: Entity) {
        return this.getColumnValue(name);
      },
      set(this: Entity, value: unknown) {
        this.setColumnValue(name, value);
      },
      enumerable: true,
      configurable: true,
    });
  }
}

/** The Activity entity with typed properties, as the platform's generated class offers them. */
export class Activity extends Entity {
  declare title: string | null;
  declare typeId: string | null;
  declare activityCategoryId: string | null;
  declare statusId: string | null;
  declare priorityId: string | null;
  declare ownerId: string | null;
  declare authorId: string | null;
  declare startDate: Date | null;
  declare dueDate: Date | null;
  declare readonly createdOn: Date | null;
  declare readonly createdById: string | null;
  declare readonly modifiedOn: Date | null;
  declare readonly modifiedById: string | null;

  constructor(userConnection: UserConnection) {
    super(userConnection, userConnection.entitySchemaManager.getInstanceByName("Activity"));
  }
}

accessors(Activity, [
  "Title",
  "TypeId",
  "ActivityCategoryId",
  "StatusId",
  "PriorityId",
  "OwnerId",
  "AuthorId",
  "StartDate",
  "DueDate",
  "CreatedOn",
  "CreatedById",
  "ModifiedOn",
  "ModifiedById",
]);
