import type { Initiator } from "./types.ts";

/** The longest user id, culture, time zone or tenant an initiator may carry. */
const MAX_FIELD_LENGTH = 250;

/** Whether the text holds a C0 control character or DEL (a NUL among them, which PostgreSQL refuses). */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * A check of a name that Intl accepts or refuses (a time zone, a language tag), with the names
 * seen to pass kept (up to 1,000), since Intl's check costs some microseconds a call.
 */
function intlCheck(accepts: (name: string) => void, refusal: (shown: string) => string): (name: string, prefix?: string) => string {
  const known = new Set<string>();
  return (name, prefix = "") => {
    if (known.has(name)) return name;
    let ok = typeof name === "string" && name.length > 0 && name.length <= MAX_FIELD_LENGTH && !hasControlCharacter(name);
    if (ok) {
      try {
        accepts(name);
      } catch {
        ok = false;
      }
    }
    if (!ok) throw new RangeError(`${prefix}${refusal(JSON.stringify(name))}`);
    if (known.size < 1000) known.add(name);
    return name;
  };
}

/** The time zone when it is an IANA name this runtime knows; throws a RangeError that says so otherwise. */
export const assertTimeZone = intlCheck(
  (timeZone) => new Intl.DateTimeFormat("en-US", { timeZone }),
  (shown) => `unknown time zone ${shown}: use an IANA name such as "Europe/Berlin"`,
);

/** The culture when it is a well-formed BCP 47 language tag such as "en-US"; throws a RangeError otherwise. */
export const assertCulture = intlCheck(
  (culture) => Intl.getCanonicalLocales(culture),
  (shown) => `culture ${shown} is not a language tag: use one such as "en-US"`,
);

function text(value: unknown, field: string): string {
  if (typeof value !== "string") throw new TypeError(`runAsUser: ${field} must be a string, got ${value === null ? "null" : typeof value}`);
  if (value.length === 0 || value.length > MAX_FIELD_LENGTH) {
    throw new RangeError(`runAsUser: ${field} must be 1-${MAX_FIELD_LENGTH} characters, got ${value.length}`);
  }
  if (hasControlCharacter(value)) throw new RangeError(`runAsUser: ${field} ${JSON.stringify(value)} holds a control character`);
  return value;
}

/**
 * The initiator runAsUser records for the tasks started inside it: the user id, and the culture,
 * time zone and tenant when given, each checked. Other fields of the object are not kept, so a
 * whole user record passed in does not end up in every task row.
 */
export function checkedInitiator(user: unknown): Initiator {
  if (typeof user !== "object" || user === null) throw new TypeError("runAsUser needs a user with a non-empty userId");
  const given = user as Record<string, unknown>;
  if (typeof given.userId !== "string" || given.userId.length === 0) throw new TypeError("runAsUser needs a user with a non-empty userId");
  const initiator: { userId: string; culture?: string; timeZone?: string; tenant?: string } = { userId: text(given.userId, "userId") };
  if (given.culture !== undefined) initiator.culture = assertCulture(text(given.culture, "culture"), "runAsUser: ");
  if (given.timeZone !== undefined) initiator.timeZone = assertTimeZone(text(given.timeZone, "timeZone"), "runAsUser: ");
  if (given.tenant !== undefined) initiator.tenant = text(given.tenant, "tenant");
  return Object.freeze(initiator);
}
