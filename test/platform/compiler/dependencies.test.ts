import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePackage, loadPackage, PackageLoadError, type CompiledPackage } from "../../../src/platform/packages/compiler/index.ts";
import { contextOf, input, platformApi, problemsOf, script } from "./helpers.ts";

/** Base: a data type and a class. Sales depends on Base. */
const baseSchemas = [
  { name: "UsrOrderData", source: "export interface UsrOrderData {\n  amount: number;\n}\n" },
  {
    name: "UsrPricing",
    source: [
      'import type { UsrOrderData } from "./UsrOrderData";',
      "export class UsrPricing {",
      "  static total(order: UsrOrderData): number {",
      "    return order.amount * 2;",
      "  }",
      "}",
    ].join("\n"),
  },
];

describe("packages that depend on packages", () => {
  let base: CompiledPackage;
  let sales: CompiledPackage;

  it("a package imports a dependency's schemas by name; its scripts use them", async () => {
    base = await compilePackage(input({ packageName: "Base", schemas: baseSchemas }));
    sales = await compilePackage(
      input({
        packageName: "Sales",
        dependencies: [base],
        schemas: [
          {
            name: "UsrInvoice",
            source: [
              'import { UsrPricing } from "UsrPricing";',
              'import type { UsrOrderData } from "./UsrOrderData";',
              'export { UsrPricing } from "UsrPricing";',
              "export function invoiceTotal(order: UsrOrderData): number {",
              "  return UsrPricing.total(order) + 1;",
              "}",
            ].join("\n"),
          },
        ],
        scripts: [script("ScriptTask1", 'const order: UsrOrderData = { amount: 10 };\ncontext.set("total", invoiceTotal(order));\nreturn true;', ["UsrInvoice", "UsrOrderData"])],
      }),
    );
    assert.deepEqual(sales.exports, { UsrInvoice: ["UsrPricing", "invoiceTotal"] });
    assert.match(sales.code, /require\("Base"\)/);
    // The dependency's code is not copied into the bundle.
    assert.doesNotMatch(sales.code, /amount \* 2/);

    const loadedBase = loadPackage(base, platformApi);
    const loadedSales = loadPackage(sales, platformApi, [loadedBase]);
    // One class, shared: the dependency's module, not a copy.
    assert.equal(loadedSales.modules.UsrInvoice?.UsrPricing, loadedBase.modules.UsrPricing?.UsrPricing);
    const parameters: Record<string, unknown> = {};
    assert.equal(await loadedSales.script("UsrProcess", "ScriptTask1")(contextOf(parameters)), true);
    assert.deepEqual(parameters, { total: 21 });
  });

  it("a dependency's types are checked across packages", async () => {
    const problems = await problemsOf(
      input({
        packageName: "Sales",
        dependencies: [base],
        schemas: [{ name: "UsrWrong", source: 'import { UsrPricing } from "UsrPricing";\nexport const t = UsrPricing.total({ amount: "ten" });\n' }],
      }),
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, "UsrWrong");
    assert.equal(problems[0]?.line, 2);
    assert.match(problems[0]?.message ?? "", /Type 'string' is not assignable to type 'number'/);
  });

  it("without the dependency, its schemas cannot be imported", async () => {
    const problems = await problemsOf(
      input({ packageName: "Sales", schemas: [{ name: "UsrInvoice", source: 'export { UsrPricing } from "UsrPricing";\n' }] }),
    );
    assert.match(problems[0]?.message ?? "", /cannot import "UsrPricing": package Sales has no schema UsrPricing/);
  });

  it("loading a package without its dependency fails, naming it", () => {
    assert.throws(
      () => loadPackage(sales, platformApi),
      (e: unknown) => e instanceof PackageLoadError && /cannot import "Base".*pass its loaded package to loadPackage/.test(e.message),
    );
  });

  it("a package's own schema wins over a dependency's of the same name", async () => {
    const own = await compilePackage(
      input({
        packageName: "Sales",
        dependencies: [base],
        schemas: [
          { name: "UsrPricing", source: "export const UsrPricing = 'own';\n" },
          { name: "UsrUser", source: 'import { UsrPricing } from "./UsrPricing";\nexport const which: string = UsrPricing;\n' },
        ],
      }),
    );
    assert.equal(loadPackage(own, platformApi, [loadPackage(base, platformApi)]).modules.UsrUser?.which, "own");
  });

  it("a dependency's own dependencies must be given too (the whole hierarchy)", async () => {
    // Reports depends on Sales, which depends on Base.
    const reports = {
      packageName: "Reports",
      schemas: [{ name: "UsrReport", source: 'import { invoiceTotal } from "UsrInvoice";\nexport const sample = invoiceTotal({ amount: 1 });\n' }],
    };
    const problems = await problemsOf(input({ ...reports, dependencies: [sales] }));
    assert.ok(
      problems.some((p) => p.schema === "UsrInvoice" && /schema UsrInvoice of dependency Sales: give its dependencies to this compile too/.test(p.message)),
      JSON.stringify(problems),
    );
    const compiled = await compilePackage(input({ ...reports, dependencies: [sales, base] }));
    // Loading needs only the direct dependencies, already loaded with theirs.
    const loadedBase = loadPackage(base, platformApi);
    const loaded = loadPackage(compiled, platformApi, [loadPackage(sales, platformApi, [loadedBase])]);
    assert.equal(loaded.modules.UsrReport?.sample, 3);
  });
});
