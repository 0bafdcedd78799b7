/** What the raw baselines (bench/scenarios/raw-*.ts) share. */

/** Rows claimed per UPDATE ... RETURNING. */
export const CLAIM_BATCH = 500;

/** A payload the size of a small encoded parameter object ({ n: 12345 } is 8 bytes of MessagePack). */
export const PAYLOAD = Buffer.from([0x81, 0xa1, 0x6e, 0xcd, 0x30, 0x39, 0x00, 0x00]);
