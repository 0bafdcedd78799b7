import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isChildMessage, type ChildSpec, type RoundResult } from "./protocol.ts";

/** The entry point of every benchmark child process. */
export const CHILD_ENTRY = fileURLToPath(new URL("../child.ts", import.meta.url));

/** Keeps the last `limit` characters of a stream's output, for error reports. */
class Tail {
  private text = "";
  constructor(private readonly limit = 8_000) {}
  add(chunk: Buffer | string): void {
    this.text = (this.text + String(chunk)).slice(-this.limit);
  }
  toString(): string {
    return this.text.trimEnd();
  }
}

export class ChildFailure extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = "ChildFailure";
  }
}

/**
 * Runs one spec in a fresh Node process (through tsx) and resolves with its result. Rejects with
 * a ChildFailure, carrying the tail of the child's output, when the child reports an error, exits
 * without a result or with a non-zero code, or outlives `killAfterMs` (it is then killed), or
 * when `signal` aborts (it is then killed too).
 */
export function runChild(
  spec: ChildSpec,
  options: { killAfterMs: number; execArgv?: readonly string[]; cwd?: string; signal?: AbortSignal },
): Promise<RoundResult> {
  return new Promise((resolve, reject) => {
    const output = new Tail();
    const child = fork(CHILD_ENTRY, [JSON.stringify(spec)], {
      execArgv: ["--import", "tsx", ...(options.execArgv ?? [])],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    child.stdout?.on("data", (chunk: Buffer) => output.add(chunk));
    child.stderr?.on("data", (chunk: Buffer) => output.add(chunk));
    let result: RoundResult | null = null;
    let failure: string | null = null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.killAfterMs);
    const onAbort = (): void => {
      failure ??= "interrupted";
      child.kill("SIGKILL");
    };
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort);
    child.on("message", (message: unknown) => {
      if (!isChildMessage(message)) return;
      if (message.type === "result") result = message.result;
      else failure = message.stack ?? message.message;
    });
    child.on("error", (error) => {
      failure ??= `could not run the child: ${error.message}`;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      const what = `${spec.scenario} (pid ${child.pid ?? "?"})`;
      if (timedOut) {
        reject(new ChildFailure(`${what} exceeded its time limit of ${Math.round(options.killAfterMs / 1000)} s and was killed`, output.toString()));
      } else if (failure !== null) {
        reject(new ChildFailure(`${what} failed: ${failure}`, output.toString()));
      } else if (code !== 0 || result === null) {
        const how = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
        reject(new ChildFailure(`${what} ${how}${result === null ? " without a result" : ""}`, output.toString()));
      } else {
        resolve(result);
      }
    });
  });
}
