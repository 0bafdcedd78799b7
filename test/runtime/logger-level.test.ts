/** The runtime's logger: the application's own follows its level changes; UNDERWAY_LOG_LEVEL is checked. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { createLogger } from "../../src/runtime/logger.ts";
import type { Logger } from "../../src/tasks/logger.ts";

function pinoInMemory(level: string): { logger: pino.Logger; lines: () => { level: number; msg: string }[] } {
  const written: string[] = [];
  const logger = pino({ level }, { write: (line: string) => void written.push(line) });
  return { logger, lines: () => written.map((l) => JSON.parse(l) as { level: number; msg: string }) };
}

describe("the application's logger", () => {
  it("follows level changes the application makes after the runtime took it, and stays guarded", () => {
    const { logger, lines } = pinoInMemory("info");
    const guarded = createLogger(logger as unknown as Logger);
    guarded.warn("before");
    logger.level = "error";
    guarded.warn({ n: 1 }, "turned down");
    guarded.info("turned down too");
    guarded.error("still written");
    logger.level = "debug";
    guarded.debug("turned up");
    assert.deepEqual(
      lines().map((l) => [l.level, l.msg]),
      [
        [40, "before"],
        [50, "still written"],
        [20, "turned up"],
      ],
    );

    // Still guarded: a logger that throws (a broken transport) breaks nothing.
    const throwing: Logger = {
      debug: () => {
        throw new Error("broken transport");
      },
      info: () => {
        throw new Error("broken transport");
      },
      warn: () => {
        throw new Error("broken transport");
      },
      error: () => {
        throw new Error("broken transport");
      },
      child: () => {
        throw new Error("broken child");
      },
    };
    const broken = createLogger(throwing);
    assert.doesNotThrow(() => {
      broken.info("x");
      broken.error({ err: new Error("y") }, "z");
      broken.child({ a: 1 }).warn("w");
    });
  });
});

describe("UNDERWAY_LOG_LEVEL", () => {
  const withLevel = <T>(value: string | undefined, fn: () => T): T => {
    const saved = process.env.UNDERWAY_LOG_LEVEL;
    if (value === undefined) delete process.env.UNDERWAY_LOG_LEVEL;
    else process.env.UNDERWAY_LOG_LEVEL = value;
    try {
      return fn();
    } finally {
      if (saved === undefined) delete process.env.UNDERWAY_LOG_LEVEL;
      else process.env.UNDERWAY_LOG_LEVEL = saved;
    }
  };
  const levelOf = (logger: Logger): string => (logger as unknown as pino.Logger).level;

  it("is info when unset, empty or blank, and is trimmed", () => {
    assert.equal(withLevel(undefined, () => levelOf(createLogger(undefined))), "info");
    assert.equal(withLevel("", () => levelOf(createLogger(undefined))), "info");
    assert.equal(withLevel("  ", () => levelOf(createLogger(undefined))), "info");
    assert.equal(withLevel(" warn\n", () => levelOf(createLogger(undefined))), "warn");
    assert.equal(withLevel("silent", () => levelOf(createLogger(undefined))), "silent");
  });

  it("refuses an unknown level with an error that names the variable and the levels", () => {
    for (const value of ["verbose", "information", "3"]) {
      assert.throws(
        () => withLevel(value, () => createLogger(undefined)),
        (error: Error) =>
          error.message === `UNDERWAY_LOG_LEVEL is ${JSON.stringify(value)}: expected one of trace, debug, info, warn, error, fatal, silent (unset or empty: info)`,
      );
    }
  });
});
