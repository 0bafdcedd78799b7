import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePackage, PackageCompileError, type CompileProblem } from "../../../src/platform/packages/compiler/index.ts";
import { condition, input, problemsOf, script, workedExample } from "./helpers.ts";

/** The problems as `schema:line:column message` lines, for readable assertions. */
function lines(problems: readonly CompileProblem[]): string[] {
  return problems.map((p) => `${p.schema}:${p.line}:${p.column} ${p.message}`);
}

describe("problems in schemas", () => {
  it("a type error: the schema, its line and column, TypeScript's message", async () => {
    const problems = await problemsOf(
      input({
        schemas: [
          { name: "UsrFine", source: "export const one = 1;\n" },
          { name: "UsrBad", source: 'export const one = 1;\n\nexport const n: number = "text";\n' },
        ],
      }),
    );
    assert.deepEqual(lines(problems), ["UsrBad:3:14 Type 'string' is not assignable to type 'number'."]);
  });

  it("package code is checked against the real platform API", async () => {
    const source = [
      'import { Activity, type UserConnection } from "underway";',
      "export function create(userConnection: UserConnection): Activity {",
      "  const activity = new Activity(userConnection);",
      '  activity.titel = "x";',
      "  return activity;",
      "}",
    ].join("\n");
    const problems = await problemsOf(input({ schemas: [{ name: "UsrCreate", source }] }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, "UsrCreate");
    assert.equal(problems[0]?.line, 4);
    assert.equal(problems[0]?.column, 12);
    assert.match(problems[0]?.message ?? "", /Property 'titel' does not exist on type 'Activity'. Did you mean 'title'\?/);
  });

  it("strict mode: implicit any and possibly-null values are errors", async () => {
    const source = "export function f(x) {\n  return x;\n}\nexport function g(s: string | null): number {\n  return s.length;\n}\n";
    const problems = await problemsOf(input({ schemas: [{ name: "UsrLoose", source }] }));
    assert.deepEqual(
      problems.map((p) => `${p.line}:${p.column}`),
      ["1:19", "5:10"],
    );
    assert.match(problems[0]?.message ?? "", /implicitly has an 'any' type/);
    assert.match(problems[1]?.message ?? "", /'s' is possibly 'null'/);
  });

  it("code nested too deeply for the compiler: a problem where it nests deepest, not a crash", async () => {
    const deep = (n: number): string => `${"(".repeat(n)}1${")".repeat(n)}`;
    const problems = await problemsOf(
      input({
        schemas: [
          { name: "UsrShallow", source: `export const a = ${deep(20)};\n` },
          { name: "UsrDeep", source: `// "((((" in a comment is not nesting\nexport const a = 1;\nexport const b = [${deep(5_000)}];\n` },
        ],
        scripts: [script("Shallow", `return ${deep(50)} === 1;`)],
      }),
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, "UsrDeep");
    assert.equal(problems[0]?.line, 3);
    assert.equal(problems[0]?.column, 5_018);
    assert.match(problems[0]?.message ?? "", /nests too deeply for the compiler .* 5001 levels of brackets/);
    // In a script too.
    const inScript = await problemsOf(input({ scripts: [script("Deep", `const x = ${deep(5_000)};\nreturn x === 1;`)] }));
    assert.deepEqual(
      inScript.map((p) => `${p.schema}:${p.line}:${p.column}`),
      ["UsrProcess/Deep:1:5010"],
    );
    // A chain of operators thousands long overflows too, with no deep brackets to point at.
    const chain = await problemsOf(input({ schemas: [{ name: "UsrChain", source: `export const x = ${"1 + ".repeat(20_000)}1;\n` }] }));
    assert.deepEqual(lines(chain), ["UsrChain:1:1 the code is too deeply nested for the compiler (it ran out of stack): split long expressions or types into smaller ones"]);
  });

  it("a syntax error", async () => {
    const problems = await problemsOf(input({ schemas: [{ name: "UsrSyntax", source: "export const a = 1;\nexport const b = ;\n" }] }));
    assert.deepEqual(lines(problems), ["UsrSyntax:2:18 Expression expected."]);
  });

  it("every problem of every schema is reported, in schema order", async () => {
    const problems = await problemsOf(
      input({
        schemas: [
          { name: "UsrA", source: "export const a: string = 1;\nexport const b: number = 'b';\n" },
          { name: "UsrB", source: "export const c: boolean = 0;\n" },
        ],
      }),
    );
    assert.deepEqual(
      problems.map((p) => `${p.schema}:${p.line}`),
      ["UsrA:1", "UsrA:2", "UsrB:1"],
    );
  });

  it('an import of "node:fs" is refused at compile time', async () => {
    const source = 'export const x = 1;\nimport { readFileSync } from "node:fs";\nexport const y = readFileSync;\n';
    const problems = await problemsOf(input({ schemas: [{ name: "UsrFiles", source }] }));
    // One problem (ours), not TypeScript's "cannot find module" too.
    assert.deepEqual(lines(problems), [
      'UsrFiles:2:30 package code cannot import "node:fs": a package may import only "underway", its own schemas and the schemas of the packages it depends on',
    ]);
  });

  it("require(), import() and npm packages are refused too", async () => {
    const source = [
      'const cp = require("node:child_process");',
      'export const load = () => import("node:os");',
      'export { sql } from "kysely";',
      "export const used = cp;",
    ].join("\n");
    const problems = await problemsOf(input({ schemas: [{ name: "UsrSneaky", source }] }));
    assert.deepEqual(
      problems.map((p) => `${p.schema}:${p.line}:${p.column}`),
      ["UsrSneaky:1:20", "UsrSneaky:2:34", "UsrSneaky:3:21"],
    );
    assert.match(problems[0]?.message ?? "", /^package code cannot import "node:child_process": a package may import only "underway"/);
    assert.match(problems[1]?.message ?? "", /^package code cannot import "node:os"/);
    assert.match(problems[2]?.message ?? "", /^cannot import "kysely": package UsrTest has no schema kysely/);
  });

  it("an import of a schema that does not exist", async () => {
    const problems = await problemsOf(input({ schemas: [{ name: "UsrUser", source: 'import { x } from "./UsrMissing";\nexport const y = x;\n' }] }));
    assert.deepEqual(lines(problems), ['UsrUser:1:19 cannot import "./UsrMissing": package UsrTest has no schema UsrMissing, and neither has any package it depends on']);
  });

  it("an error esbuild finds (top-level await in a CommonJS bundle) is located too", async () => {
    const problems = await problemsOf(input({ schemas: [{ name: "UsrAwait", source: "export const a = 1;\nawait Promise.resolve();\n" }] }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, "UsrAwait");
    assert.equal(problems[0]?.line, 2);
    assert.equal(problems[0]?.column, 1);
    assert.match(problems[0]?.message ?? "", /Top-level await/);
  });

  it("names: schemas, duplicates, the package", async () => {
    assert.deepEqual(
      lines(
        await problemsOf(
          input({
            schemas: [
              { name: "Usr-Bad", source: "" },
              { name: "UsrTwice", source: "" },
              { name: "UsrTwice", source: "" },
            ],
          }),
        ),
      ),
      [
        'Usr-Bad:1:1 schema name "Usr-Bad" is not valid: use letters, digits and _, starting with a letter',
        "UsrTwice:1:1 package UsrTest has two schemas named UsrTwice",
      ],
    );
    assert.match((await problemsOf(input({ packageName: "underway" })))[0]?.message ?? "", /package name "underway" is not valid/);
  });

  it("PackageCompileError's message lists the problems", async () => {
    await assert.rejects(
      compilePackage(input({ schemas: [{ name: "UsrBad", source: "export const n: number = '';\n" }] })),
      (e: unknown) => e instanceof PackageCompileError && /UsrTest does not compile \(1 problem\):\n {2}UsrBad:1:14: Type 'string'/.test(e.message),
    );
  });
});

describe("problems in scripts and conditions", () => {
  const owner = "UsrProcess/ScriptTask1";

  it("a type error in a script is located in the script body", async () => {
    const body = 'const x = 1;\nconst n: number = context.get("x");\nreturn n === x;';
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", body)] }));
    assert.deepEqual(lines(problems), [`${owner}:2:7 Type 'unknown' is not assignable to type 'number'.`]);
  });

  it("a script of the worked example with an error: the process's other parts stay fine", async () => {
    const example = await workedExample();
    const broken = { ...example.scripts[0]!, body: example.scripts[0]!.body.replace("ActivityConsts.TaskTypeUId", "ActivityConsts.NoSuchType") };
    const problems = await problemsOf({ ...example, scripts: [broken] });
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, "UsrBackgroundTaskExampleProcess/ScriptTask_CreateBackgroundTask");
    assert.equal(problems[0]?.line, 1);
    assert.equal(problems[0]?.column, 102);
    assert.match(problems[0]?.message ?? "", /Property 'NoSuchType' does not exist/);
  });

  it("a script that returns a string", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", 'await Promise.resolve();\nreturn "yes";')] }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, owner);
    assert.equal(problems[0]?.line, 2);
    assert.match(problems[0]?.message ?? "", /Type 'string' is not assignable to type 'boolean'/);
  });

  it("a script that does not return a boolean on every path", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", 'if (context.get("x") === 1) {\n  return true;\n}\ncontext.set("y", 1);')] }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.schema, owner);
    assert.equal(problems[0]?.line, 4);
    assert.match(problems[0]?.message ?? "", /^the script must return a boolean on every path \(Function lacks ending return statement/);
  });

  it("an empty script", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", "")] }));
    assert.match(lines(problems).join("\n"), /UsrProcess\/ScriptTask1:1:1 the script must return a boolean on every path/);
  });

  it("a syntax error in a script", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", "const a = 1;\nconst b = a +;\nreturn true;")] }));
    assert.deepEqual(lines(problems), [`${owner}:2:14 Expression expected.`]);
  });

  it("a script cannot break out of its function", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", "return true;\n}\nexport function sneaky(): void {")] }));
    assert.deepEqual(lines(problems), [`${owner}:1:1 the script body is not one complete function body (check its braces)`]);
  });

  it("a script using a name that is not in its usings, and an unknown using", async () => {
    const problems = await problemsOf(
      input({
        schemas: [{ name: "UsrData", source: "export const answer = 42;\n" }],
        scripts: [script("ScriptTask1", "return answer === 42;"), script("ScriptTask2", "return true;", ["UsrNoSuchSchema"])],
      }),
    );
    assert.deepEqual(lines(problems), [
      `${owner}:1:8 Cannot find name 'answer'.`,
      'UsrProcess/ScriptTask2:1:1 using "UsrNoSuchSchema" is not a schema of package UsrTest or of a package it depends on',
    ]);
  });

  it("scripts cannot import node modules either", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", 'const fs = await import("node:fs");\nreturn fs !== undefined;')] }));
    assert.deepEqual(problems.map((p) => `${p.schema}:${p.line}:${p.column}`), [`${owner}:1:25`]);
    assert.match(problems[0]?.message ?? "", /package code cannot import "node:fs"/);
  });

  it("an import() whose module name is computed is refused at compile time, in schemas and scripts", async () => {
    const problems = await problemsOf(
      input({
        schemas: [{ name: "UsrLoader", source: 'const name = ["node", "fs"].join(":");\nexport const load = () => import(name);\nexport const loadOs = () => import(`node:${"os"}`);\n' }],
        scripts: [script("ScriptTask1", 'const fs = await import(String(context.get("module")));\nreturn fs !== undefined;')],
      }),
    );
    const message = 'import() must name its module with a string literal: package code may import only "underway", its own schemas and the schemas of the packages it depends on';
    assert.deepEqual(lines(problems), [`UsrLoader:2:27 ${message}`, `UsrLoader:3:29 ${message}`, `${owner}:1:18 ${message}`]);
  });

  it("conditions: not a boolean, not one expression, await", async () => {
    const problems = await problemsOf(
      input({
        conditions: [
          condition("Flow1", 'context.get("x")'),
          condition("Flow2", "true; context.set('y', 1)"),
          condition("Flow3", "await Promise.resolve(true)"),
          condition("Flow4", '\n  context.get("x") ===\n    "a" - 1'),
        ],
      }),
    );
    assert.deepEqual(
      problems.map((p) => `${p.schema}:${p.line}:${p.column}`),
      ["UsrProcess/Flow1:1:1", "UsrProcess/Flow2:1:1", "UsrProcess/Flow3:1:1", "UsrProcess/Flow4:3:5"],
    );
    assert.match(problems[0]?.message ?? "", /Type 'unknown' is not assignable to type 'boolean'/);
    assert.match(problems[1]?.message ?? "", /the condition is not one expression/);
    assert.match(problems[2]?.message ?? "", /'await' expressions are only allowed within async functions/);
    assert.match(problems[3]?.message ?? "", /The left-hand side of an arithmetic operation must be/);
  });

  it("two scripts with one element id", async () => {
    const problems = await problemsOf(input({ scripts: [script("ScriptTask1", "return true;"), script("ScriptTask1", "return false;")] }));
    assert.deepEqual(lines(problems), [`${owner}:1:1 process UsrProcess has two scripts with the id "ScriptTask1"`]);
  });
});
