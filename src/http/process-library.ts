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
  private cached: { key: string; processes: LibraryProcess[] } | null = null;
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
    if (this.cached?.key === key) return this.cached.processes;
    const processes: LibraryProcess[] = [];
    for (const [packageName, version] of versions) {
      const build = await this.platform.packages.build(packageName, version);
      for (const [code, xml] of Object.entries(build?.manifest.processes ?? {})) {
        const title = await parseProcess(xml).then(
          (d) => d.name,
          () => code,
        );
        processes.push({ code, title, packageName, version, xml });
      }
    }
    processes.sort((a, b) => a.title.localeCompare(b.title));
    this.cached = { key, processes };
    this.redacted = new Map();
    return processes;
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
