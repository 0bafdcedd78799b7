/** The current user lacks a right the operation needs (schema or record). */
export class EntitySecurityError extends Error {
  override readonly name = "EntitySecurityError";
}

/** A save was refused: required columns without a value, or a value of the wrong type. */
export class EntityValidationError extends Error {
  override readonly name: string = "EntityValidationError";
}

/** A delete was refused: other records, or a user, refer to the record. Nothing was deleted. */
export class EntityInUseError extends EntityValidationError {
  override readonly name: string = "EntityInUseError";
}
