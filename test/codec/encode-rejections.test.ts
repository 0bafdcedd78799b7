import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_MAX_PARAMETER_BYTES,
  MAX_NESTING_DEPTH,
  TaskSerializationError,
  decodeParameters,
  encodeParameters,
} from "../../src/codec/index.ts";
import { assertEncodeRejects } from "./helpers.ts";

class Contact {
  name = "Ann";
}

describe("encodeParameters rejects what cannot come back unchanged", () => {
  it("rejects functions and methods", () => {
    assertEncodeRejects(
      { owner: { name: "Ann", save() {} } },
      "parameters.owner.save: a function cannot be serialized",
    );
    assertEncodeRejects(() => 1, "parameters: a function cannot be serialized");
    assertEncodeRejects({ kind: Contact }, "parameters.kind: a function cannot be serialized");
  });

  it("rejects symbols as values", () => {
    assertEncodeRejects(
      { items: [1, 2, 3, Symbol("x")] },
      "parameters.items[3]: a symbol cannot be serialized",
    );
  });

  it("rejects symbol-keyed properties", () => {
    assertEncodeRejects(
      { owner: { name: "Ann", [Symbol("secret")]: 1 } },
      "parameters.owner[Symbol(secret)]: a symbol-keyed property cannot be serialized; use a string key",
    );
  });

  it("rejects class instances, naming the class", () => {
    assertEncodeRejects(
      { owner: new Contact() },
      "parameters.owner: an instance of class Contact cannot be serialized; pass a plain object with simple fields",
    );
    const Anonymous = (() => class {})();
    assertEncodeRejects(
      [new Anonymous()],
      "parameters[0]: an instance of class (anonymous) cannot be serialized; pass a plain object with simple fields",
    );
    assertEncodeRejects(
      { x: Object.create({ inherited: 1 }) },
      "parameters.x: an object with a custom prototype cannot be serialized; pass a plain object with simple fields",
    );
    // A class instance is rejected even if it has a toJSON method.
    class WithToJson {
      toJSON() {
        return {};
      }
    }
    assertEncodeRejects(
      new WithToJson(),
      "parameters: an instance of class WithToJson cannot be serialized; pass a plain object with simple fields",
    );
  });

  it("rejects Map and Set, suggesting a plain object or an array", () => {
    assertEncodeRejects(
      { lookup: new Map([["a", 1]]) },
      "parameters.lookup: a Map cannot be serialized (it would come back as a plain object); pass a plain object instead, e.g. Object.fromEntries(map)",
    );
    assertEncodeRejects(
      { ids: new Set([1]) },
      "parameters.ids: a Set cannot be serialized (it would come back as an array); pass an array instead, e.g. [...set]",
    );
  });

  it("rejects WeakMap, WeakSet and Promise", () => {
    assertEncodeRejects({ cache: new WeakMap() }, "parameters.cache: a WeakMap cannot be serialized");
    assertEncodeRejects({ seen: new WeakSet() }, "parameters.seen: a WeakSet cannot be serialized");
    assertEncodeRejects(
      { pending: Promise.resolve(1) },
      "parameters.pending: a Promise cannot be serialized; await it and pass the result",
    );
  });

  it("rejects typed arrays other than Uint8Array, and raw buffers", () => {
    for (const array of [
      new Float64Array(1),
      new Float32Array(1),
      new Int8Array(1),
      new Int16Array(1),
      new Uint16Array(1),
      new Int32Array(1),
      new Uint32Array(1),
      new Uint8ClampedArray(1),
      new BigInt64Array(1),
      new BigUint64Array(1),
    ]) {
      const name = array.constructor.name;
      assertEncodeRejects(
        { samples: array },
        `parameters.samples: a ${name} cannot be serialized; only Uint8Array (bytes) is supported, pass a Uint8Array or an array of numbers`,
      );
    }
    assertEncodeRejects(
      { raw: new ArrayBuffer(4) },
      "parameters.raw: an ArrayBuffer cannot be serialized; pass a Uint8Array view of it",
    );
    assertEncodeRejects(
      { raw: new SharedArrayBuffer(4) },
      "parameters.raw: an ArrayBuffer cannot be serialized; pass a Uint8Array view of it",
    );
    assertEncodeRejects(
      { raw: new DataView(new ArrayBuffer(4)) },
      "parameters.raw: a DataView cannot be serialized; pass a Uint8Array",
    );
  });

  it("rejects other built-in objects with a hint", () => {
    assertEncodeRejects({ re: /x/ }, "parameters.re: a RegExp cannot be serialized; pass its source as a string");
    assertEncodeRejects(
      { error: new TypeError("boom") },
      "parameters.error: an Error cannot be serialized; pass its message as a string",
    );
    assertEncodeRejects(
      { boxed: new String("x") },
      "parameters.boxed: a boxed primitive (such as new String()) cannot be serialized; pass the primitive value",
    );
  });

  it("rejects an invalid Date", () => {
    assertEncodeRejects({ when: new Date("nope") }, "parameters.when: an invalid Date cannot be serialized");
  });

  it("rejects bigints outside the 64-bit range", () => {
    const range =
      "is outside the 64-bit range and cannot be serialized; MessagePack integers go from -9223372036854775808 to 18446744073709551615 (pass larger numbers as a string)";
    assertEncodeRejects({ n: 2n ** 64n }, `parameters.n: the bigint 18446744073709551616 ${range}`);
    assertEncodeRejects({ n: -(2n ** 63n) - 1n }, `parameters.n: the bigint -9223372036854775809 ${range}`);
  });

  it("rejects strings with unpaired surrogates, which UTF-8 cannot carry", () => {
    const reason =
      "cannot be serialized; it is not valid Unicode and would not come back unchanged";
    assertEncodeRejects(
      { name: "ab\uD800" },
      `parameters.name: a string with an unpaired UTF-16 surrogate (at index 2) ${reason}`,
    );
    assertEncodeRejects(
      { name: "x\uDC00y" },
      `parameters.name: a string with an unpaired UTF-16 surrogate (at index 1) ${reason}`,
    );
    assertEncodeRejects(
      { text: "x".repeat(100) + "\uDBFF" },
      `parameters.text: a string with an unpaired UTF-16 surrogate (at index 100) ${reason}`,
    );
    assertEncodeRejects(
      { "bad\uD800": 1 },
      `parameters["bad\\ud800"]: a string with an unpaired UTF-16 surrogate (at index 3) ${reason}`,
    );
  });

  it("rejects cyclic references, naming both ends", () => {
    const a: Record<string, unknown> = {};
    a.b = a;
    assertEncodeRejects({ a }, "parameters.a.b: cyclic reference (the value refers back to parameters.a)");

    const root: Record<string, unknown> = {};
    root.self = root;
    assertEncodeRejects(root, "parameters.self: cyclic reference (the value refers back to parameters)");

    const list: unknown[] = [];
    list.push({ parent: list });
    assertEncodeRejects({ list }, "parameters.list[0].parent: cyclic reference (the value refers back to parameters.list)");
  });

  it("rejects nesting deeper than MAX_NESTING_DEPTH", () => {
    let value: unknown = 1;
    for (let i = 0; i <= MAX_NESTING_DEPTH; i++) value = [value];
    assertEncodeRejects(
      value,
      `parameters${"[0]".repeat(MAX_NESTING_DEPTH)}: nesting is deeper than the limit of 64 levels of arrays and objects`,
    );
    // A deep chain (no cycle) of a million levels fails the same way, without a stack overflow.
    let chain: Record<string, unknown> = {};
    const head = chain;
    for (let i = 0; i < 1_000_000; i++) {
      const next = {};
      chain.n = next;
      chain = next;
    }
    assertEncodeRejects(
      head,
      `parameters${".n".repeat(MAX_NESTING_DEPTH)}: nesting is deeper than the limit of 64 levels of arrays and objects`,
    );
  });

  it("formats odd keys in paths with brackets", () => {
    assertEncodeRejects(
      { "odd key": { "0": { $ok_1: [{ "": Symbol() }] } } },
      'parameters["odd key"]["0"].$ok_1[0][""]: a symbol cannot be serialized',
    );
  });

  it("uses the given root name in paths", () => {
    assertEncodeRejects(
      { save() {} },
      "task.parameters.save: a function cannot be serialized",
      { rootName: "task.parameters" },
    );
  });

  it("wraps an error thrown by a getter, naming the property", () => {
    const value = {
      owner: {
        get name(): string {
          throw new Error("not loaded");
        },
      },
    };
    const error = assertEncodeRejects(value, "parameters.owner.name: reading the value threw an error: not loaded");
    assert.ok(error.cause instanceof Error);
  });

  it("wraps an error thrown by a proxy trap, naming the object", () => {
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("revoked");
        },
      },
    );
    assertEncodeRejects({ list: [proxy] }, "parameters.list[0]: reading the value threw an error: revoked");
  });

  it("wraps a thrown value that cannot itself be shown as text", () => {
    const unreadable = Object.create(null) as object;
    const lyingToString = {
      toString(): string {
        throw new RangeError("no string");
      },
    };
    const badMessage = new Error("x");
    Object.defineProperty(badMessage, "message", {
      get(): string {
        throw new SyntaxError("message getter");
      },
    });
    for (const thrown of [unreadable, lyingToString, badMessage]) {
      const error = assertEncodeRejects(
        {
          get x(): unknown {
            throw thrown;
          },
        },
        "parameters.x: reading the value threw an error: (a thrown value that cannot be shown as text)",
      );
      assert.equal(error.cause, thrown);
    }
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw unreadable;
        },
      },
    );
    assertEncodeRejects(proxy, "parameters: reading the value threw an error: (a thrown value that cannot be shown as text)");
  });

  it("names an array whose length cannot be read, not an element of a sibling read before it", () => {
    const array = new Proxy([1, 2], {
      get(target, key, receiver) {
        if (key === "length") throw new Error("detached");
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    assertEncodeRejects({ rows: [[1, 2, 3], array] }, "parameters.rows[1]: reading the value threw an error: detached");
    const lying = (length: unknown): unknown[] => new Proxy([7], { get: (target, key) => (key === "length" ? length : (Reflect.get(target, key) as unknown)) });
    assertEncodeRejects({ rows: [lying("1")] }, 'parameters.rows[0]: an array that reports an invalid length ("1") cannot be serialized');
    assertEncodeRejects({ rows: [lying(-1)] }, "parameters.rows[0]: an array that reports an invalid length (-1) cannot be serialized");
    assertEncodeRejects({ rows: [lying(2 ** 40)] }, `parameters.rows[0]: an array that reports an invalid length (${2 ** 40}) cannot be serialized`);
  });

  it("throws synchronously: nothing to await, nothing returned", () => {
    let returned: unknown = "not set";
    assert.throws(() => {
      returned = encodeParameters({ f() {} });
    }, TaskSerializationError);
    assert.equal(returned, "not set");
  });

  it("keeps working after a rejection (no state leaks into the next call)", () => {
    assertEncodeRejects({ a: [1, 2, { f() {} }] }, "parameters.a[2].f: a function cannot be serialized");
    assert.deepEqual(decodeParameters(encodeParameters({ a: [1, 2, { g: 3 }] })), { a: [1, 2, { g: 3 }] });
  });
});

describe("encodeParameters enforces the size limit", () => {
  // {"blob": <str32>}: 1 (fixmap) + 5 (key) + 5 (str32 header) = 11 bytes around the text.
  const blob = (encodedSize: number) => ({ blob: "x".repeat(encodedSize - 11) });

  it("accepts exactly the default limit of 1 MiB", () => {
    assert.equal(encodeParameters(blob(DEFAULT_MAX_PARAMETER_BYTES)).length, DEFAULT_MAX_PARAMETER_BYTES);
  });

  it("rejects more than the default limit, with sizes in MiB", () => {
    assertEncodeRejects(blob(Math.round(1.2 * 1_048_576)), "parameters: encoded size 1.2 MiB exceeds the limit of 1 MiB");
  });

  it("shows exact byte counts when the rounded sizes would look equal", () => {
    assertEncodeRejects(
      blob(DEFAULT_MAX_PARAMETER_BYTES + 1),
      "parameters: encoded size 1048577 bytes exceeds the limit of 1048576 bytes",
    );
  });

  it("honours a custom limit, smaller or larger", () => {
    const note = { note: "x".repeat(200) }; // 1 + 5 + 2 + 200 = 208 bytes
    assert.equal(encodeParameters(note, { maxBytes: 208 }).length, 208);
    assertEncodeRejects(note, "parameters: encoded size 208 bytes exceeds the limit of 100 bytes", { maxBytes: 100 });
    assertEncodeRejects(blob(3000), "parameters: encoded size 2.9 KiB exceeds the limit of 2 KiB", { maxBytes: 2048 });
    const big = blob(3 * 1_048_576);
    assert.equal(encodeParameters(big, { maxBytes: 4 * 1_048_576 }).length, 3 * 1_048_576);
  });

  it("stops early on a hostile value instead of allocating without bound", () => {
    const sparse: unknown[] = [];
    sparse.length = 2 ** 32 - 1; // 4 billion holes, each a nil byte
    const error = assertEncodeRejects(
      { items: sparse },
      /^parameters: encoded size is more than 4 MiB \(stopped at parameters\.items\[\d+\]\), which exceeds the limit of 1 MiB$/,
    );
    assert.equal(error.path, "parameters");
  });

  it("rejects a limit that is not a positive integer", () => {
    for (const maxBytes of [0, -1, 1.5, NaN, Infinity]) {
      assert.throws(() => encodeParameters({}, { maxBytes }), {
        name: "RangeError",
        message: `maxBytes must be a positive integer, got ${maxBytes}`,
      });
    }
  });
});
