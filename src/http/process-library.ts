import { PackageBuildUnreadableError } from "../platform/packages/packages.ts";
import type { Platform } from "../platform/platform.ts";
import { parseProcess, withoutProcessCode } from "../platform/processes/bpmn/index.ts";

export interface LibraryProcess {
  readonly code: string;
  readonly title: string;
  readonly packageName: string;
  readonly version: number;
  readonly xml: string;
}

/** The processes of the newest build of every package, read again only when a build is added. */
export class ProcessLibrary {
  /** The list made for the newest builds (key), and those of them it had to leave out: they could not be read. */
  private cached: { key: string; processes: LibraryProcess[]; unreadable: readonly (readonly [string, number])[] } | null = null;
  /**
   * Diagrams without their code (what users other than administrators see), made once per build:
   * writing a diagram back takes a while for a large one, and every view would otherwise pay it
   * again on the server's one event loop. Forgotten with the list when a build is added.
   */
  private redacted = new Map<LibraryProcess, Promise<string>>();

  constructor(private readonly platform: Platform) {}

  async list(): Promise<LibraryProcess[]> {
    const versions = [...(await this.platform.packages.latestVersions())].sort(([a], [b]) => a.localeCompare(b));
    const key = versions.map(([name, version]) => `${name}@${version}`).join(",");
    if (this.cached?.key === key && !(await this.mended(this.cached.unreadable))) return this.cached.processes;
    const processes: LibraryProcess[] = [];
    const unreadable: [string, number][] = [];
    for (const [packageName, version] of versions) {
      let build;
      try {
        build = await this.platform.packages.build(packageName, version);
      } catch (error) {
        // A build whose stored manifest cannot be read (its row changed by hand) is left out,
        // once logged naming it: the other packages' processes are still listed and run. Logged
        // once per list made, that is when a build is added or that one is mended.
        if (!(error instanceof PackageBuildUnreadableError)) throw error;
        this.platform.runtime.logger.error({ err: error, package: packageName, version }, `the process library leaves out package build ${packageName}@${version}: ${error.message}`);
        unreadable.push([packageName, version]);
        continue;
      }
      for (const [code, xml] of Object.entries(build?.manifest.processes ?? {})) {
        const title = await parseProcess(xml).then(
          (d) => d.name,
          () => code,
        );
        processes.push({ code, title, packageName, version, xml });
      }
    }
    processes.sort((a, b) => a.title.localeCompare(b.title));
    this.cached = { key, processes, unreadable };
    this.redacted = new Map();
    return processes;
  }

  /**
   * Whether a build the list left out can be read now (its row was mended by hand, which adds no
   * build and so would not change the key): the list is made again. Only those builds are read.
   */
  private async mended(unreadable: readonly (readonly [string, number])[]): Promise<boolean> {
    for (const [packageName, version] of unreadable) {
      try {
        await this.platform.packages.build(packageName, version);
        return true;
      } catch (error) {
        if (!(error instanceof PackageBuildUnreadableError)) throw error;
      }
    }
    return false;
  }

  /** The process's diagram without script bodies and conditions (see withoutProcessCode). */
  withoutCode(process: LibraryProcess): Promise<string> {
    let xml = this.redacted.get(process);
    if (!xml) {
      xml = withoutProcessCode(process.xml);
      // A failure is not kept: the next view tries again.
      xml.catch(() => this.redacted.delete(process));
      this.redacted.set(process, xml);
    }
    return xml;
  }
}
