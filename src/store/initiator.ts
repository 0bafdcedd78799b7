import type { Initiator } from "../tasks/types.ts";

/** What the stores keep of an initiator besides its user id (a JSON column). */
export type InitiatorContext = Omit<Initiator, "userId">;

/**
 * The initiator of a row: its user id column plus the context column, or null. Only the context's
 * known fields, and only as text: a column changed by hand to hold other JSON (a string, an array,
 * other fields) adds nothing (each store's column is read the same way).
 */
export function initiatorOf(userId: string | null, context: unknown): Initiator | null {
  if (userId === null) return null;
  const initiator: { userId: string; culture?: string; timeZone?: string; tenant?: string } = { userId };
  if (context !== null && typeof context === "object" && !Array.isArray(context)) {
    const { culture, timeZone, tenant } = context as Record<string, unknown>;
    if (typeof culture === "string") initiator.culture = culture;
    if (typeof timeZone === "string") initiator.timeZone = timeZone;
    if (typeof tenant === "string") initiator.tenant = tenant;
  }
  return initiator;
}

/** The JSON text of the initiator's context, or null when it has none. */
export function initiatorContext(initiator: Initiator | null): string | null {
  if (!initiator) return null;
  // Only the known fields: an initiator object carrying more (a whole user record) keeps no more.
  const context: { culture?: string; timeZone?: string; tenant?: string } = {};
  if (typeof initiator.culture === "string") context.culture = initiator.culture;
  if (typeof initiator.timeZone === "string") context.timeZone = initiator.timeZone;
  if (typeof initiator.tenant === "string") context.tenant = initiator.tenant;
  return Object.keys(context).length ? JSON.stringify(context) : null;
}
