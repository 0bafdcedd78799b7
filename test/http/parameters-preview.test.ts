/** The task page's view of decoded parameters: JSON-safe, shortened, and every key shown as data. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { decodeParameters, encodeParameters } from "../../src/codec/index.ts";
import { previewValue } from "../../src/http/parameters-preview.ts";

it("shows a __proto__ key as an ordinary key, without changing the preview's prototype", () => {
  const stored = JSON.parse('{"__proto__": {"role": "admin"}, "customerId": 7}') as Record<string, unknown>;
  const preview = previewValue(decodeParameters(encodeParameters(stored))) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(preview), Object.prototype);
  assert.deepEqual(Object.keys(preview), ["__proto__", "customerId"]);
  assert.equal((preview as { role?: unknown }).role, undefined);
  assert.equal(JSON.stringify(preview), '{"__proto__":{"role":"admin"},"customerId":7}');
});

it("shortens long keys as it shortens strings, and keeps every key apart from the more-keys marker", () => {
  const long = "k".repeat(1_000_000);
  const preview = previewValue({ [long]: 1, [`${long}x`]: 2 }) as Record<string, unknown>;
  assert.ok(JSON.stringify(preview).length < 1_000, "a megabyte key shows shortened");
  assert.deepEqual(Object.values(preview), [1, 2], "two keys shortened alike are both shown");

  const many: Record<string, number> = { "…": -1 };
  for (let i = 0; i < 60; i++) many[`k${i}`] = i;
  const shown = previewValue(many) as Record<string, unknown>;
  assert.equal(shown["…"], -1, "the value's own key is shown as it is");
  assert.equal(shown["… (2)"], "11 more keys");
});
