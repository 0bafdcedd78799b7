import type { FastifyInstance } from "fastify";
import type { Platform } from "../../platform/platform.ts";
import { PackageBuildUnreadableError } from "../../platform/packages/packages.ts";
import { ProcessNotFoundError, ProcessParameterError } from "../../platform/processes/engine.ts";
import { ProcessLibrary } from "../process-library.ts";

/** Running processes and reading the process log. */
export function processRoutes(platform: Platform) {
  const library = new ProcessLibrary(platform);
  return async (app: FastifyInstance): Promise<void> => {
    app.get("/api/processes", async (request, reply) => {
      if (!request.session) return reply.code(401).send({ error: "sign in first" });
      return { items: (await library.list()).map(({ xml: _xml, ...process }) => process) };
    });

    app.get("/api/processes/:code", { schema: { params: { type: "object", properties: { code: { type: "string", minLength: 1, maxLength: 200 } } } } }, async (request, reply) => {
      const session = request.session;
      if (!session) return reply.code(401).send({ error: "sign in first" });
      const { code } = request.params as { code: string };
      const process = (await library.list()).find((p) => p.code === code);
      if (!process) return reply.code(404).send({ error: `no published process has the code ${JSON.stringify(code)}` });
      // Script bodies and conditions are package code: only administrators read the configuration.
      return { ...process, xml: session.user.isAdmin ? process.xml : await library.withoutCode(process) };
    });

    app.post(
      "/api/processes/:code/run",
      {
        schema: {
          params: { type: "object", properties: { code: { type: "string", minLength: 1, maxLength: 200 } } },
          body: {
            anyOf: [
              { type: "null" },
              { type: "object", additionalProperties: false, properties: { parameters: { type: "object", maxProperties: 100 } } },
            ],
          },
        },
      },
      async (request, reply) => {
        const session = request.session;
        if (!session) return reply.code(401).send({ error: "sign in first" });
        const { code } = request.params as { code: string };
        const body = (request.body ?? {}) as { parameters?: Record<string, unknown> };
        try {
          const { instanceId } = await platform.userConnection(session.user).processEngine.processExecutor.execute(code, body.parameters ?? {});
          return reply.code(202).send({ instanceId });
        } catch (error) {
          if (error instanceof ProcessNotFoundError) return reply.code(404).send({ error: error.message });
          if (error instanceof ProcessParameterError) return reply.code(400).send({ error: error.message });
          // The process's package build cannot be read (its row changed by hand): not the
          // caller's mistake, and nothing to retry until an administrator mends or republishes it.
          if (error instanceof PackageBuildUnreadableError) {
            platform.runtime.logger.error({ err: error, code }, "a process cannot run: its package build cannot be read");
            return reply.code(503).send({ error: `the process ${code} cannot run now: ${error.message}; an administrator can publish its package again` });
          }
          throw error;
        }
      },
    );

    app.get("/api/process-log", { schema: { querystring: { type: "object", properties: { limit: { type: "integer", minimum: 1, maximum: 500, default: 50 }, offset: { type: "integer", minimum: 0, maximum: 1_000_000, default: 0 } }, additionalProperties: false } } }, async (request, reply) => {
      const session = request.session;
      if (!session) return reply.code(401).send({ error: "sign in first" });
      const { limit, offset } = request.query as { limit: number; offset: number };
      return { items: await platform.processEngine.listLog(platform.userConnection(session.user), { limit, offset }) };
    });

    app.get("/api/process-log/:id", async (request, reply) => {
      const session = request.session;
      if (!session) return reply.code(401).send({ error: "sign in first" });
      const { id } = request.params as { id: string };
      const log = await platform.processEngine.getLog(id, platform.userConnection(session.user));
      if (!log) return reply.code(404).send({ error: `no process instance ${JSON.stringify(id)} that you may see` });
      return log;
    });

    app.post("/api/process-log/:id/cancel", async (request, reply) => {
      const session = request.session;
      if (!session) return reply.code(401).send({ error: "sign in first" });
      const { id } = request.params as { id: string };
      const userConnection = platform.userConnection(session.user);
      // One the user may not see is no instance to them, as GET says.
      const log = await platform.processEngine.getLog(id, userConnection);
      if (!log) return reply.code(404).send({ error: `no process instance ${JSON.stringify(id)} that you may see` });
      if (!(await platform.processEngine.cancel(id, userConnection))) {
        const now = await platform.processEngine.getLog(id, userConnection);
        return reply.code(409).send({ error: `the instance is not running: it is ${now?.status ?? log.status}` });
      }
      return { canceled: true };
    });
  };
}
