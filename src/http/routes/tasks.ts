import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { decodeParameters } from "../../codec/index.ts";
import type { Platform } from "../../platform/platform.ts";
import type { Session } from "../../platform/users/sessions.ts";
import { MAX_TASK_ID, parseTaskId, type TaskActivityBuckets } from "../../store/driver.ts";
import { TASK_STATES, type TaskInfo, type TaskState } from "../../tasks/types.ts";
import { previewValue, type Preview } from "../parameters-preview.ts";

/** Counts stop at this many per state: bounded work on a table of millions of tasks. */
export const COUNT_CAP = 10_000;

/** A task id as text: digits (an id past 64 bits is no task, told apart where it is read). */
const ID = { type: "string", pattern: "^[1-9][0-9]*$", maxLength: 100 } as const;
const idParams = { type: "object", required: ["id"], properties: { id: ID } } as const;

/** Administrators see every task; anyone else only the tasks they started. */
function maySee(session: Session, task: TaskInfo): boolean {
  return session.user.isAdmin || task.initiator?.userId === session.user.id;
}

function signedIn(request: FastifyRequest, reply: FastifyReply): Session | null {
  if (!request.session) void reply.code(401).send({ error: "sign in first" });
  return request.session;
}

async function userNames(platform: Platform, ids: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await platform.db.selectFrom("SysAdminUnit").select(["Id", "Name"]).where("Id", "in", unique).execute();
  return new Map(rows.map((r) => [r.Id, r.Name]));
}

function summary(task: TaskInfo, names: Map<string, string>) {
  const userId = task.initiator?.userId ?? null;
  return {
    id: task.id,
    name: task.name,
    queue: task.queue,
    state: task.state,
    attempt: task.attempt,
    maxAttempts: task.maxAttempts,
    createdAt: task.createdAt,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    progress: task.progress,
    progressMessage: task.progressMessage,
    lastError: task.lastError ? { name: task.lastError.name, message: task.lastError.message } : null,
    user: userId ? { id: userId, name: names.get(userId) ?? null } : null,
  };
}

/** How long the charts' buckets are reused: a busy hour is hundreds of thousands of rows to group. */
const ACTIVITY_CACHE_MS = 5_000;

/** The task centre's data: counts, the list, one task, and Retry, Cancel and Delete. */
export function taskRoutes(platform: Platform) {
  const runtime = platform.runtime;
  // Shared by every page of the same scope (all tasks, or one user's), however many are open.
  const activityCache = new Map<string, { at: number; buckets: Promise<TaskActivityBuckets> }>();
  const activity = (windowMs: number, bucketMs: number, userId: string | undefined): Promise<TaskActivityBuckets> => {
    const key = `${userId ?? "*"}:${windowMs}:${bucketMs}`;
    const cached = activityCache.get(key);
    if (cached && Date.now() - cached.at < ACTIVITY_CACHE_MS) return cached.buckets;
    for (const [k, v] of activityCache) if (Date.now() - v.at >= ACTIVITY_CACHE_MS) activityCache.delete(k);
    const buckets = runtime.driver.taskActivityBuckets({ windowMs, bucketMs, ...(userId ? { userId } : {}) });
    activityCache.set(key, { at: Date.now(), buckets });
    buckets.catch(() => activityCache.delete(key));
    return buckets;
  };

  /** The task when the user may see it; otherwise a 404 that does not tell whether it exists. */
  async function visibleTask(request: FastifyRequest, reply: FastifyReply): Promise<{ session: Session; task: TaskInfo } | null> {
    const session = signedIn(request, reply);
    if (!session) return null;
    const { id } = request.params as { id: string };
    const task = await runtime.findTask(id);
    if (!task || !maySee(session, task)) {
      void reply.code(404).send({ error: `no task ${id} that you may see` });
      return null;
    }
    return { session, task };
  }

  return async (app: FastifyInstance): Promise<void> => {
    app.get(
      "/api/tasks",
      {
        schema: {
          querystring: {
            type: "object",
            additionalProperties: false,
            properties: {
              state: { type: "string", pattern: `^(${TASK_STATES.join("|")})(,(${TASK_STATES.join("|")}))*$` },
              name: { type: "string", minLength: 1, maxLength: 200 },
              queue: { type: "string", minLength: 1, maxLength: 200 },
              user: { type: "string", minLength: 1, maxLength: 250, description: "login of the initiating user (administrators)" },
              limit: { type: "integer", minimum: 1, maximum: 200, default: 50 },
              before: ID,
            },
          },
        },
      },
      async (request, reply) => {
        const session = signedIn(request, reply);
        if (!session) return reply;
        const q = request.query as { state?: string; name?: string; queue?: string; user?: string; limit: number; before?: string };
        if (q.before !== undefined && parseTaskId(q.before) === null) {
          return reply.code(400).send({ error: `querystring/before must be a task id (at most ${MAX_TASK_ID}), got ${q.before}` });
        }
        let userId: string | undefined = session.user.id;
        if (session.user.isAdmin) {
          userId = undefined;
          if (q.user !== undefined) {
            const user = await platform.users.getByLogin(q.user);
            if (!user) return { items: [], nextBefore: null };
            userId = user.id;
          }
        } else if (q.user !== undefined && (await platform.users.getByLogin(q.user))?.id !== session.user.id) {
          // A user sees the tasks they started: asking for another's is refused, not answered
          // with one's own under the other's name.
          return reply.code(403).send({ error: "only administrators may list another user's tasks" });
        }
        const page = await runtime.listTasks({
          ...(q.state ? { states: q.state.split(",") as TaskState[] } : {}),
          ...(q.name ? { name: q.name } : {}),
          ...(q.queue ? { queue: q.queue } : {}),
          ...(userId ? { userId } : {}),
          ...(q.before ? { beforeId: q.before } : {}),
          limit: q.limit,
        });
        const names = await userNames(platform, page.items.flatMap((t) => (t.initiator ? [t.initiator.userId] : [])));
        return { items: page.items.map((t) => summary(t, names)), nextBefore: page.nextBeforeId };
      },
    );

    app.get("/api/tasks/counts", async (request, reply) => {
      const session = signedIn(request, reply);
      if (!session) return reply;
      const counts = await runtime.driver.taskCountByStateUpTo({ cap: COUNT_CAP, ...(session.user.isAdmin ? {} : { userId: session.user.id }) });
      return { counts, cap: COUNT_CAP };
    });

    app.get(
      "/api/tasks/activity",
      {
        schema: {
          querystring: {
            type: "object",
            additionalProperties: false,
            properties: {
              windowMinutes: { type: "integer", minimum: 5, maximum: 1440, default: 60 },
              bucketSeconds: { type: "integer", minimum: 10, maximum: 3600, default: 60 },
            },
          },
        },
      },
      async (request, reply) => {
        const session = signedIn(request, reply);
        if (!session) return reply;
        const { windowMinutes, bucketSeconds } = request.query as { windowMinutes: number; bucketSeconds: number };
        if ((windowMinutes * 60) / bucketSeconds > 1000) return reply.code(400).send({ error: "at most 1000 buckets: a longer bucket or a shorter window" });
        return activity(windowMinutes * 60_000, bucketSeconds * 1000, session.user.isAdmin ? undefined : session.user.id);
      },
    );

    app.get("/api/tasks/:id", { schema: { params: idParams } }, async (request, reply) => {
      const found = await visibleTask(request, reply);
      if (!found) return reply;
      const { task } = found;
      const names = await userNames(platform, task.initiator ? [task.initiator.userId] : []);
      const bytes = await runtime.driver.taskParametersGet(task.id);
      let parameters: Preview = null;
      let parametersError: string | null = null;
      try {
        parameters = bytes ? previewValue(decodeParameters(bytes)) : null;
      } catch (error) {
        parametersError = (error as Error).message;
      }
      return {
        ...summary(task, names),
        priority: task.priority,
        runAt: task.runAt,
        timeoutMs: task.timeoutMs,
        workerId: task.workerId,
        stopping: task.stopping === true,
        withUserConnection: task.withUserConnection,
        culture: task.initiator?.culture ?? null,
        timeZone: task.initiator?.timeZone ?? null,
        parameters,
        parametersBytes: bytes?.byteLength ?? 0,
        parametersError,
        errors: task.errors.map((e) => ({ attempt: e.attempt, at: e.at, name: e.name, message: e.message, stack: e.stack ?? null })),
      };
    });

    const action = (verb: "retry" | "cancel" | "delete") => async (request: FastifyRequest, reply: FastifyReply) => {
      const found = await visibleTask(request, reply);
      if (!found) return reply;
      const id = found.task.id;
      const done = verb === "retry" ? await runtime.retryTask(id) : verb === "cancel" ? await runtime.cancelTask(id) : await runtime.deleteTask(id);
      if (!done) {
        const now = verb === "cancel" ? null : await runtime.findTask(id);
        if (now?.stopping) {
          const what = verb === "retry" ? "retried" : "deleted";
          return reply.code(409).send({ error: `the task was canceled while it ran, and that run has not ended yet; it can be ${what} once it has` });
        }
        const why = { retry: "only a failed, dead or canceled task can be retried", cancel: "the task has already ended", delete: "a running task cannot be deleted; cancel it first" }[verb];
        return reply.code(409).send({ error: `${why} (it is ${now?.state ?? found.task.state})` });
      }
      return { id, done: verb };
    };
    app.post("/api/tasks/:id/retry", { schema: { params: idParams } }, action("retry"));
    app.post("/api/tasks/:id/cancel", { schema: { params: idParams } }, action("cancel"));
    app.delete("/api/tasks/:id", { schema: { params: idParams } }, action("delete"));
  };
}
