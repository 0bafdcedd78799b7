// Cross-implementation vectors from the msgpack-test-suite package
// (https://github.com/kawanet/msgpack-test-suite): each vector is one value and the list of
// encodings every MessagePack implementation should read as that value; the first listed encoding
// is the canonical (smallest) one. No vector is skipped: the kinds our parameters do not allow
// (extension types other than timestamp) must fail with the documented error.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { TaskDeserializationError, decodeParameters, encodeParameters } from "../../src/codec/index.ts";
import { fromHex, toHex } from "./helpers.ts";

type Vector = Record<string, unknown> & { msgpack: string[] };

const suitePath = createRequire(import.meta.url).resolve("msgpack-test-suite");
const suite = JSON.parse(readFileSync(suitePath, "utf8")) as Record<string, Vector[]>;

const VALUE_KINDS = ["nil", "bool", "binary", "number", "bignum", "string", "array", "map", "timestamp", "ext"];

/** How our own encoding of a vector's value relates to the suite's list. */
type Relation =
  | "canonical" // identical to the first (smallest) listed encoding
  | "listed" // one of the listed encodings, deliberately not the smallest (see reason)
  | "inexact"; // not listed: the value has sub-millisecond nanoseconds, which a Date cannot hold

interface Case {
  file: string;
  label: string;
  vector: Vector;
  /** What decoding `hex` must give (a function of the wire format for 64-bit integers). */
  expected: (hex: string) => unknown;
  /** JS values to encode ourselves, with the expected relation to the listed encodings. */
  ours: { value: unknown; relation: Relation }[];
  /** For unsupported kinds: the exact error every listed encoding must give instead. */
  error?: string;
}

const INT64_FORMATS = new Set(["cf", "d3"]);

function toCase(file: string, vector: Vector): Case {
  const kinds = Object.keys(vector).filter((key) => key !== "msgpack");
  for (const kind of kinds) assert.ok(VALUE_KINDS.includes(kind), `${file}: unknown vector kind ${kind}`);
  const label = `${file} ${JSON.stringify(Object.fromEntries(kinds.map((k) => [k, vector[k]])))}`;

  if ("ext" in vector) {
    const [type] = vector.ext as [number, string];
    return {
      file,
      label,
      vector,
      expected: () => undefined,
      ours: [],
      error: `parameters: MessagePack extension type ${type} is not supported; the only extension allowed in parameters is the timestamp (type -1)`,
    };
  }
  if ("timestamp" in vector) {
    const [seconds, nanoseconds] = vector.timestamp as [number, number];
    // msgpackr's rule: new Date(seconds * 1000 + nanoseconds / 1e6). The sum is a double and the
    // Date cuts it toward zero to whole milliseconds, so 999999999 ns may come out a millisecond
    // later than the timestamp rounded down (the sum rounds up), and before 1970 it is cut toward
    // 1970. Either way the Date is within a millisecond of the timestamp rounded down.
    const date = new Date(seconds * 1000 + nanoseconds / 1e6);
    const floored = seconds * 1000 + Math.floor(nanoseconds / 1e6);
    assert.ok(Math.abs(date.getTime() - floored) <= 1, `${label}: ${date.toISOString()}`);
    return {
      file,
      label,
      vector,
      expected: () => date,
      ours: [{ value: date, relation: nanoseconds % 1e6 === 0 ? "canonical" : "inexact" }],
    };
  }
  if ("number" in vector || "bignum" in vector) {
    const number = vector.number as number | undefined;
    const hasInt64 = vector.msgpack.some((hex) => INT64_FORMATS.has(hex.slice(0, 2)));
    const bignum = hasInt64 ? BigInt((vector.bignum as string | undefined) ?? (number as number)) : undefined;
    const ours: Case["ours"] = [];
    if (number !== undefined) {
      // Integers within 32 bits use the smallest int format; other numbers use float64 (never
      // float32, which would lose precision in general; never int64, which is kept for bigint).
      const small = Number.isInteger(number) && number >= -(2 ** 31) && number < 2 ** 32;
      ours.push({ value: number, relation: small ? "canonical" : "listed" });
    }
    // A bigint always uses int64 (uint64 above the int64 range), so it comes back as a bigint.
    if (bignum !== undefined) {
      const format = bignum < 2n ** 63n ? "d3" : "cf";
      ours.push({ value: bignum, relation: vector.msgpack[0]?.startsWith(format) ? "canonical" : "listed" });
    }
    return {
      file,
      label,
      vector,
      // The 64-bit integer formats decode to bigint; every other number format to number.
      expected: (hex) => (INT64_FORMATS.has(hex.slice(0, 2)) ? bignum : number),
      ours,
    };
  }
  const [kind] = kinds as [string];
  const raw = vector[kind];
  const value = kind === "binary" ? fromHex(raw as string) : raw;
  return { file, label, vector, expected: () => value, ours: [{ value, relation: "canonical" }] };
}

const cases = Object.entries(suite).flatMap(([file, vectors]) => vectors.map((vector) => toCase(file, vector)));

describe("msgpack-test-suite vectors", () => {
  it("covers every file and vector of the suite", (t) => {
    const files = Object.keys(suite);
    const encodingCount = cases.reduce((sum, c) => sum + c.vector.msgpack.length, 0);
    assert.equal(files.length, 15);
    assert.equal(cases.length, Object.values(suite).reduce((sum, list) => sum + list.length, 0));
    t.diagnostic(`${files.length} files, ${cases.length} vectors, ${encodingCount} encodings`);
  });

  for (const testCase of cases) {
    const { vector } = testCase;

    it(`decodes every encoding of ${testCase.label}`, () => {
      for (const hex of vector.msgpack) {
        if (testCase.error !== undefined) {
          assert.throws(() => decodeParameters(fromHex(hex)), (error: unknown) => {
            assert.ok(error instanceof TaskDeserializationError);
            assert.equal(error.message, testCase.error);
            return true;
          });
          continue;
        }
        const decoded = decodeParameters(fromHex(hex));
        const expected = testCase.expected(hex);
        if (typeof expected === "number") assert.ok(Object.is(decoded, expected), `${hex} decoded to ${String(decoded)}`);
        assert.deepEqual(decoded, expected, hex);
      }
    });

    if (testCase.ours.length > 0) {
      it(`encodes ${testCase.label} readably, and as the suite lists it`, () => {
        for (const { value, relation } of testCase.ours) {
          const ours = encodeParameters(value);
          const hex = toHex(ours);
          assert.deepEqual(decodeParameters(ours), value);
          if (relation === "canonical") assert.equal(hex, vector.msgpack[0], `${String(value)}: canonical`);
          if (relation === "listed") {
            assert.ok(vector.msgpack.includes(hex), `${String(value)}: ${hex} should be listed`);
            assert.notEqual(hex, vector.msgpack[0]);
          }
          if (relation === "inexact") assert.ok(!vector.msgpack.includes(hex), `${hex} not listed`);
        }
      });
    }
  }

  it("summarises how our encodings relate to the suite's canonical encodings", (t) => {
    const tally: Record<Relation | "unsupported", number> = { canonical: 0, listed: 0, inexact: 0, unsupported: 0 };
    for (const testCase of cases) {
      if (testCase.error !== undefined) tally.unsupported++;
      for (const { relation } of testCase.ours) tally[relation]++;
    }
    // Pinned so a change of encoding strategy shows up here; msgpackr's Packr (with our options)
    // writes exactly what the hand-written encoder wrote. Of 101 encodings we make:
    //  canonical 65: nil, bool, binary, strings, arrays, maps, 32-bit integers as numbers,
    //                whole-millisecond timestamps, and the 7 bigints whose smallest form is int64;
    //  listed 27:    21 bigints written as int64 where a smaller int is listed first (a bigint must
    //                come back as a bigint), 4 numbers beyond 32 bits and 2 fractions written as
    //                float64 where uint64/float32 is listed first (float32 is lossy in general);
    //  inexact 9:    timestamps with sub-millisecond nanoseconds, which a Date cannot hold;
    //  unsupported 7: the ext vectors of types 1 to 7, rejected with the documented error.
    assert.deepEqual(tally, { canonical: 65, listed: 27, inexact: 9, unsupported: 7 });
    t.diagnostic(JSON.stringify(tally));

    // Of the 9 inexact timestamps, msgpackr's rule (see toCase) gives 3 the millisecond they fall
    // in, and the 6 with 999999999 ns the next one: 4 after 1970, where the double sum rounds
    // up, and 2 before 1970, where the Date cuts toward 1970.
    const offsets = { same: 0, later: 0 };
    for (const { vector } of cases) {
      if (!("timestamp" in vector)) continue;
      const [seconds, nanoseconds] = vector.timestamp as [number, number];
      if (nanoseconds % 1e6 === 0) continue;
      const decoded = decodeParameters(fromHex(vector.msgpack[0] as string)) as Date;
      const floored = seconds * 1000 + Math.floor(nanoseconds / 1e6);
      if (decoded.getTime() === floored) offsets.same++;
      else if (decoded.getTime() === floored + 1) offsets.later++;
      else assert.fail(`${JSON.stringify(vector.timestamp)} decoded to ${decoded.toISOString()}`);
    }
    assert.deepEqual(offsets, { same: 3, later: 6 });
  });
});
