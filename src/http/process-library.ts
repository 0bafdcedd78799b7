import type { Platform } from "../platform/platform.ts";
import { parseProcess } from "../platform/processes/bpmn/index.ts";

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
    return processes;
  }
}
