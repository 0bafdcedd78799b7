import type { Kysely } from "kysely";
import { Runtime, type RuntimeConfig, type RuntimeInternals } from "../runtime/runtime.ts";
import { runAsUser } from "../tasks/ambient.ts";
import { TaskSecurityError } from "../tasks/errors/task-security-error.ts";
import type { Initiator } from "../tasks/types.ts";
import { SystemIds } from "./constants.ts";
import { createKysely } from "./db/kysely.ts";
import { migratePlatform } from "./db/migrate.ts";
import { PLATFORM_MIGRATIONS } from "./db/migrations.ts";
import type { PlatformTables } from "./db/tables.ts";
import { BASE_SCHEMAS } from "./entities/definitions.ts";
import { EntitySchemaManager } from "./entities/schema.ts";
import { PackageLoader } from "./packages/loader.ts";
import { PackageBuildUnreadableError, Packages } from "./packages/packages.ts";
import { checkLoadInThread, PackageCompileError } from "./packages/compiler/index.ts";
import { PackageScheduleError, PackageSchedules } from "./packages/schedules.ts";
import { taskNameProblems } from "./packages/task-names.ts";
import { ProcessEngine, ProcessInstanceTask } from "./processes/engine.ts";
import { ProcessTaskWatch } from "./processes/task-watch.ts";
import { UserConnection, type AppConnection, type CurrentUser } from "./user-connection.ts";
import { Sessions } from "./users/sessions.ts";
import { signInLimitsOf, type SignInLimits } from "./users/sign-in-limits.ts";
import { Users, type PlatformUser } from "./users/users.ts";
import { keysOf } from "../tasks/known-keys.ts";

export interface PlatformConfig extends Omit<RuntimeConfig, "userConnectionFactory"> {
  /** How long a sign-in lasts, ms. Default 8 hours. */
  readonly sessionTtlMs?: number;
  /** Failed sign-ins allowed per login and per client address within a window. Default 10 and 100 in 15 minutes. */
  readonly signInLimits?: SignInLimits;
  /** The Supervisor's password on a fresh database. Default UNDERWAY_ADMIN_PASSWORD, else generated. */
  readonly adminPassword?: string;
  /** Told the generated Supervisor password once, on a fresh database. Default: printed to stderr. */
  readonly onGeneratedAdminPassword?: (password: string) => void;
  /**
   * Whether this process generates the Supervisor's password on a fresh database when none is
   * given. Default true. `underway worker` and `underway run` say false: a worker's output often
   * goes where others read it, and the password is for whoever signs in to the web application,
   * whose process generates it (a given password is set either way).
   */
  readonly generateAdminPassword?: boolean;
  /** Package folders saved and published at start when the package has no build yet, or the folder changed since. */
  readonly packages?: readonly string[];
  /** How often a worker looks for newer package builds, ms. Default 1,000. */
  readonly packageRefreshMs?: number;
}

/** The platform's options beside the runtime's (see checkKnownKeys). */
const PLATFORM_CONFIG_KEYS = keysOf<Omit<PlatformConfig, keyof RuntimeConfig>>()([
  "sessionTtlMs",
  "signInLimits",
  "adminPassword",
  "onGeneratedAdminPassword",
  "generateAdminPassword",
  "packages",
  "packageRefreshMs",
]);

function currentUserOf(user: PlatformUser): CurrentUser {
  return {
    id: user.id,
    name: user.name,
    contactId: user.contactId,
    contactName: user.contactName,
    culture: user.culture,
    timeZone: user.timeZone,
    isAdmin: user.isAdmin,
    roleIds: user.roleIds,
  };
}

/**
 * The platform slice on one store: users and sessions, entities, and the task runtime whose
 * tasks receive a UserConnection of the user who started them.
 */
export class Platform {
  readonly runtime: Runtime;
  readonly db: Kysely<PlatformTables>;
  readonly users: Users;
  readonly sessions: Sessions;
  readonly entitySchemaManager = new EntitySchemaManager(BASE_SCHEMAS);
  readonly appConnection: AppConnection;
  readonly packages: Packages;
  readonly packageLoader: PackageLoader;
  /** The recurring tasks packages declare: checked when publishing, defined once a build is stored. */
  readonly packageSchedules: PackageSchedules;
  readonly processEngine: ProcessEngine;
  /** Ends instances whose own task was canceled, deleted or died where no event told this process. */
  readonly processTaskWatch: ProcessTaskWatch;
  private systemConnection: UserConnection | null = null;

  private constructor(
    private readonly config: PlatformConfig,
    internals: RuntimeInternals = {},
  ) {
    // Checked before the runtime opens the store, which a refusal here would leave open.
    signInLimitsOf(config.signInLimits);
    this.runtime = new Runtime(
      {
        ...config,
        tasks: [...(config.tasks ?? []), ProcessInstanceTask],
        userConnectionFactory: (initiator) => this.userConnectionFor(initiator),
      },
      // Isolated tasks get a platform of their own in their thread: entities, UserConnection, processes.
      {
        threadHost: new URL("./isolation/thread-host.ts", import.meta.url).href,
        configName: "Platform.start's configuration",
        moreConfigKeys: PLATFORM_CONFIG_KEYS,
        ...internals,
      },
    );
    this.db = createKysely<PlatformTables>(this.runtime.driver);
    this.users = new Users(this.runtime.driver, this.db);
    this.sessions = new Sessions(this.runtime.driver, this.db, this.users, { ttlMs: config.sessionTtlMs, signInLimits: config.signInLimits });
    this.packages = new Packages(this.runtime.driver, this.db, {
      check: async ({ packageName, compiled, dependencies, schedules }) => {
        // Loaded whether or not it declares schedules: code that throws as it loads is refused here
        // (PackageLoadError), not found out later by every process lookup. First in a thread with
        // a time limit, so that top-level code that never ends cannot hold this thread.
        await checkLoadInThread(compiled, dependencies, this.packages);
        const loaded = await this.packageLoader.loadCompiled(compiled, dependencies);
        // A task runs the class its name resolves to: a name taken by another class is refused.
        const otherPackages = await this.packageLoader.otherNewestBuilds(packageName);
        const problems = taskNameProblems(compiled, loaded, { registry: this.runtime.registry, otherPackages });
        if (problems.length > 0) throw new PackageCompileError(packageName, problems);
        await this.packageSchedules.check(packageName, loaded, schedules);
      },
      published: async ({ manifest }) => {
        try {
          const earlier = await this.packages.scheduleNamesDeclaredBefore(manifest.packageName, manifest.version);
          await this.packageSchedules.apply(manifest.packageName, manifest.version, manifest.schedules ?? [], earlier);
        } catch (error) {
          throw new PackageScheduleError(
            manifest.packageName,
            null,
            `build ${manifest.version} is published, but its schedules could not be defined (they are defined again at the next start): ${(error as Error).message}`,
          );
        }
      },
    });
    // Package code imports "underway": the public API, loaded when a build is first used.
    this.packageLoader = new PackageLoader(this.packages, () => import("../index.ts") as Promise<Record<string, unknown>>, config.packageRefreshMs);
    this.packageSchedules = new PackageSchedules(this.runtime, this.packageLoader);
    this.processEngine = new ProcessEngine(this.runtime.driver, this.db, this.packageLoader, this.runtime);
    this.runtime.registry.setResolver((name) => this.packageLoader.resolveTaskClass(name));
    this.runtime.on("taskDead", (event) => {
      if (event.name !== ProcessInstanceTask.taskName) return;
      this.processEngine.failByTask(event.taskId, event.error).catch((error: unknown) =>
        this.runtime.logger.error({ err: error, taskId: event.taskId }, "recording a dead process instance failed"),
      );
    });
    // A process instance's own task canceled while it ran here: the instance ends as Canceled at
    // once, even when the attempt cannot (a stopped thread). Events are local to this process;
    // cancels and deletes anywhere else, and of tasks that never run again, are the watch's.
    this.runtime.on("taskDiscarded", (event) => {
      if (event.name !== ProcessInstanceTask.taskName || event.reason !== "canceled") return;
      this.processEngine.cancelByTask(event.taskId).catch((error: unknown) =>
        this.runtime.logger.error({ err: error, taskId: event.taskId }, "recording a canceled process instance failed"),
      );
    });
    this.processTaskWatch = new ProcessTaskWatch(this.processEngine, this.runtime.driver, this.runtime);
    const processEngine = this.processEngine;
    const driver = this.runtime.driver;
    const systemConnection = (): UserConnection => {
      if (!this.systemConnection) throw new Error("the platform has not started");
      return this.systemConnection;
    };
    this.appConnection = {
      db: this.db,
      entitySchemaManager: this.entitySchemaManager,
      get systemUserConnection(): UserConnection {
        return systemConnection();
      },
      processEngine,
      dialect: this.runtime.driver.dialect,
      // The store's own transaction: an entity save starts no task, so the worker is not woken after it.
      transaction: (fn) => driver.transaction(() => fn()),
    };
  }

  /** Creates the store, applies all migrations, and starts the runtime. */
  static async start(config: PlatformConfig): Promise<Platform> {
    const platform = new Platform(config);
    // The platform's tables exist before the worker claims a task or boots a task thread.
    await platform.runtime.start({
      afterMigrate: async () => {
        await migratePlatform(platform.runtime.driver, platform.db as unknown as Kysely<unknown>, PLATFORM_MIGRATIONS);
        const supervisor = await platform.users.getById(SystemIds.SupervisorUserId);
        if (!supervisor) throw new Error("the Supervisor user is missing from the database");
        platform.systemConnection = new UserConnection(platform.appConnection, { ...currentUserOf(supervisor), isAdmin: true });
      },
    });
    try {
      const { generated } = await platform.users.ensureSupervisorPassword(config.adminPassword ?? process.env.UNDERWAY_ADMIN_PASSWORD, {
        generate: config.generateAdminPassword ?? true,
      });
      await platform.defineSchedulesOfPackages();
      for (const folder of config.packages ?? []) await platform.installPackage(folder);
      if (generated) {
        (config.onGeneratedAdminPassword ?? ((p) => process.stderr.write(`\nunderway: the Supervisor's password is ${p} (shown once; change it after signing in)\n\n`)))(generated);
      }
    } catch (error) {
      await platform.runtime.stop({ graceMs: 0 });
      throw error;
    }
    // Not in an isolated task's thread (attach): the worker's process keeps the watch.
    platform.processTaskWatch.start(true);
    if (!platform.runtime.signsInitiators) {
      platform.runtime.logger.warn(
        { store: platform.runtime.driver.description },
        "this store has no server secret: every process run and every task started with a user connection will be refused until one is set " +
          "(UNDERWAY_SECRET, the same on every node, or Platform.start({ secret }))",
      );
    }
    return platform;
  }

  /**
   * The platform inside an isolated task's thread: the same services on the store the worker's
   * process lends, without the start-up duties (migrations, the Supervisor's password, packages).
   */
  static async attach(config: PlatformConfig, internals: RuntimeInternals): Promise<Platform> {
    const platform = new Platform(config, internals);
    await platform.runtime.start();
    const supervisor = await platform.users.getById(SystemIds.SupervisorUserId);
    if (!supervisor) throw new Error("the Supervisor user is missing from the database");
    platform.systemConnection = new UserConnection(platform.appConnection, { ...currentUserOf(supervisor), isAdmin: true });
    return platform;
  }

  /**
   * Defines the schedules of every package's newest build, as every start defines the schedules
   * given in code, and deletes those earlier builds declared that it does not: a publish whose
   * schedules could not be applied is made good here. A failure is logged, not fatal.
   */
  private async defineSchedulesOfPackages(): Promise<void> {
    for (const [name, version] of await this.packages.latestVersions()) {
      try {
        const schedules = (await this.packages.build(name, version))?.manifest.schedules ?? [];
        // Those of earlier builds that this one dropped go, should a publish have left them behind.
        const earlier = await this.packages.scheduleNamesDeclaredBefore(name, version);
        if (schedules.length > 0 || earlier.length > 0) await this.packageSchedules.apply(name, version, schedules, earlier);
      } catch (error) {
        this.runtime.logger.error({ err: error, package: name, version }, "defining the schedules of a package failed");
      }
    }
  }

  /**
   * Saves and publishes a package folder, unless that package already has a build of this very
   * folder: a folder that changed since it was installed (its underway-package.json or a schema
   * file) is installed again, its schemas and schedules replacing the package's. A package that
   * was not installed from a folder (or before folders were fingerprinted) is left as it is. The
   * folder's "schedules" are checked against the build and defined once it is stored.
   */
  async installPackage(folder: string): Promise<{ name: string; version: number | null }> {
    const read = await this.packages.readFolder(folder);
    const name = read.descriptor.name;
    const existing = (await this.packages.latestVersions()).get(name);
    if (existing !== undefined) {
      let installed: string | undefined;
      try {
        installed = (await this.packages.build(name, existing))?.manifest.folder;
      } catch (error) {
        // Its newest build cannot be read (a row changed by hand), so neither can whether it came
        // from this folder: the folder is not installed over what may be a package changed
        // elsewhere, and the start goes on with the other packages. The log names the build.
        if (!(error instanceof PackageBuildUnreadableError)) throw error;
        this.runtime.logger.error(
          { err: error, package: name, version: existing, folder },
          `the package folder ${folder} is not installed, since whether ${name}@${existing} came from it cannot be told: ${error.message}; mend that row and start again`,
        );
        return { name, version: existing };
      }
      if (installed === undefined || installed === read.fingerprint) return { name, version: existing };
    }
    await this.packages.importFolder(read);
    const { version } = await this.packages.publish(name, null, { schedules: read.descriptor.schedules, folder: read.fingerprint });
    this.runtime.logger.info({ package: name, version }, existing === undefined ? "package published" : "package folder changed: installed and published again");
    return { name, version };
  }

  /** A UserConnection of this user. */
  userConnection(user: PlatformUser): UserConnection {
    return new UserConnection(this.appConnection, currentUserOf(user));
  }

  /** Rebuilds the connection of a task's initiator; refuses a user who is gone or deactivated. */
  async userConnectionFor(initiator: Initiator): Promise<UserConnection> {
    const user = await this.users.getById(initiator.userId);
    if (!user) throw new TaskSecurityError(`the user ${initiator.userId} who started the task no longer exists`);
    if (!user.active) throw new TaskSecurityError(`the user ${user.name} who started the task has been deactivated`);
    return this.userConnection(user);
  }

  /** Runs fn as the user: tasks started with a user connection inside run as that user. */
  runAs<T>(user: PlatformUser, fn: () => T): T {
    return this.runtime.run(() => runAsUser({ userId: user.id, culture: user.culture, timeZone: user.timeZone }, fn));
  }

  async stop(options?: { graceMs?: number }): Promise<void> {
    await this.processTaskWatch.stop();
    return this.runtime.stop(options);
  }
}
