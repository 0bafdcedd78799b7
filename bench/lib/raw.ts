/** What the machine-limit scenarios (bench/scenarios/limit-*.ts) share. */
import { unpack } from "msgpackr";

/** Rows claimed per UPDATE ... RETURNING. */
export const CLAIM_BATCH = 500;

/** A payload the size of a small encoded parameter object: { n: 12345 } in MessagePack. */
export const PAYLOAD = Buffer.from([0x81, 0xa1, 0x6e, 0xcd, 0x30, 0x39]);

/** Decodes a claimed row's payload as a worker would before running it; throws on a bad one. */
export function decodePayload(bytes: Uint8Array | undefined): void {
  if (!bytes) throw new Error("a claimed row has no payload");
  const value: unknown = unpack(bytes);
  if (typeof value !== "object" || value === null) throw new Error(`a claimed row's payload decodes to ${JSON.stringify(value)}`);
}
