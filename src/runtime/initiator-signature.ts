import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Initiator } from "../tasks/types.ts";

/**
 * Tamper protection of a task's initiator: an HMAC, keyed by a server secret, over the task name,
 * the initiating user and the parameters. A row edited in the database (another user id, other
 * parameters) no longer matches, and the task is refused instead of running as someone else.
 */
export class InitiatorSigner {
  constructor(private readonly key: Buffer) {}

  sign(name: string, initiator: Initiator, parameters: Uint8Array): string {
    const h = createHmac("sha256", this.key);
    h.update("underway-initiator-v1\n");
    h.update(JSON.stringify([name, initiator.userId, initiator.culture ?? null, initiator.timeZone ?? null, initiator.tenant ?? null]));
    h.update("\n");
    h.update(createHash("sha256").update(parameters).digest());
    return h.digest("base64url");
  }

  verify(name: string, initiator: Initiator, parameters: Uint8Array, signature: string | null): boolean {
    if (!signature) return false;
    const expected = Buffer.from(this.sign(name, initiator, parameters));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}

/**
 * The secret: given, else UNDERWAY_SECRET, else (SQLite file stores only) a random one kept in a
 * file beside the database, readable by its owner only. PostgreSQL nodes must share one secret,
 * so there it has to be configured.
 */
export function resolveSecret(given: string | undefined, sqlitePath: string | null): Buffer | null {
  const text = given ?? process.env.UNDERWAY_SECRET;
  if (text !== undefined && text !== "") {
    if (text.length < 16) throw new Error("the secret must be at least 16 characters long");
    return Buffer.from(text, "utf8");
  }
  if (sqlitePath === null) return null;
  if (sqlitePath === ":memory:") return randomBytes(32);
  const file = join(dirname(sqlitePath), ".underway-secret");
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(32).toString("base64url"), { flag: "wx", mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    chmodSync(file, 0o600);
  }
  return Buffer.from(readFileSync(file, "utf8").trim(), "utf8");
}
