import { after } from "node:test";
import { Platform, type PlatformConfig } from "../../src/platform/platform.ts";
import { tempDb, tempDir, tempSchema, TEST_POSTGRES_URL } from "../helpers.ts";

export const STORES = ["sqlite", "postgres"] as const;

/** A started platform on a fresh store of the given kind, stopped when the file's tests end. */
export async function startPlatform(store: (typeof STORES)[number], config: Partial<PlatformConfig> = {}): Promise<Platform> {
  const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
  const platform = await Platform.start({
    db,
    logger: false,
    secret: "platform tests secret value",
    adminPassword: "supervisor-pass",
    ...config,
  });
  after(() => platform.stop({ graceMs: 0 }));
  return platform;
}
