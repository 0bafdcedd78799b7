import { join } from "node:path";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { tempDir } from "../helpers.ts";
import { driverSuite } from "./driver-suite.ts";
import { compositionSuite } from "./composition-suite.ts";

const dir = tempDir();
let n = 0;

driverSuite({
  name: "sqlite",
  create: async () => new SqliteDriver({ path: join(dir, `conformance-${++n}.db`), watch: false }),
});
compositionSuite({ name: "sqlite", create: async () => new SqliteDriver({ path: join(dir, `conformance-${++n}.db`), watch: false }) });
