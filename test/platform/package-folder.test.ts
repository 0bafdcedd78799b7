/** A package folder as installed: its schema files must lie inside it. */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PackageInputError } from "../../src/platform/packages/errors.ts";
import { tempDir } from "../helpers.ts";
import { startPlatform } from "./helpers.ts";

describe("a package folder", () => {
  it("refuses a schema file outside the folder, a sibling whose name begins with the folder's included, and saves nothing", async () => {
    const platform = await startPlatform("sqlite", { worker: false });
    const root = tempDir();
    const folder = join(root, "UsrPkg");
    mkdirSync(folder);
    mkdirSync(join(root, "UsrPkg2"));
    writeFileSync(join(folder, "UsrInside.ts"), "export const inside = 1;\n");
    writeFileSync(join(root, "UsrPkg2", "UsrOutside.ts"), "export const outside = 2;\n");
    const install = (file: string) => {
      const schemas = [
        { name: "UsrFirst", kind: "source", file: "UsrInside.ts" },
        { name: "UsrSchema", kind: "source", file },
      ];
      writeFileSync(join(folder, "underway-package.json"), JSON.stringify({ name: "UsrPkg", schemas }));
      return platform.packages.importFolder(folder);
    };
    for (const file of ["../UsrPkg2/UsrOutside.ts", "../../etc/passwd", "/etc/passwd"]) {
      await assert.rejects(install(file), (e: unknown) => e instanceof PackageInputError && e.message === `schema file ${file} lies outside the package folder`, file);
    }
    await assert.rejects(install("UsrMissing.ts"), (e: unknown) => e instanceof PackageInputError && /^cannot read schema file UsrMissing\.ts: ENOENT/.test(e.message));
    // Nothing saved, not even the package.
    assert.deepEqual((await platform.packages.listPackages()).map((p) => p.name), []);
    await install("./sub/../UsrInside.ts");
    assert.deepEqual(
      (await platform.packages.getSchemas("UsrPkg")).map((s) => [s.name, s.body]),
      [
        ["UsrFirst", "export const inside = 1;\n"],
        ["UsrSchema", "export const inside = 1;\n"],
      ],
    );
  });
});
