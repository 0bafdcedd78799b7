import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { PackageCompileError, PackageLoadError } from "../../platform/packages/compiler/index.ts";
import { BpmnDefinitionError } from "../../platform/processes/bpmn/index.ts";
import { PackageInputError, PackageNotFoundError } from "../../platform/packages/errors.ts";
import { PackageScheduleError } from "../../platform/packages/schedules.ts";
import type { Platform } from "../../platform/platform.ts";

function adminOnly(request: FastifyRequest, reply: FastifyReply): boolean {
  if (!request.session) {
    void reply.code(401).send({ error: "sign in first" });
    return false;
  }
  if (!request.session.user.isAdmin) {
    void reply.code(403).send({ error: "only administrators may change the configuration" });
    return false;
  }
  return true;
}

/**
 * The answer to what a package request was refused for; any other error is a failure of the
 * server (500, its message in the log only), rethrown.
 */
function refused(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof PackageNotFoundError) return reply.code(404).send({ error: error.message });
  if (error instanceof PackageInputError || error instanceof PackageScheduleError || error instanceof PackageLoadError) {
    return reply.code(400).send({ error: error.message });
  }
  if (error instanceof PackageCompileError || error instanceof BpmnDefinitionError) return reply.code(422).send({ error: error.message, problems: error.problems });
  throw error;
}

/** The Configuration section's data: packages, their schemas, Save and Publish. */
export function packageRoutes(platform: Platform) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get("/api/packages", async (request, reply) => {
      if (!adminOnly(request, reply)) return reply;
      return { items: await platform.packages.listPackages() };
    });

    app.post(
      "/api/packages",
      { schema: { body: { type: "object", required: ["name"], additionalProperties: false, properties: { name: { type: "string" }, description: { type: "string", maxLength: 1000 }, dependencies: { type: "array", items: { type: "string" }, maxItems: 50 } } } } },
      async (request, reply) => {
        if (!adminOnly(request, reply)) return reply;
        const body = request.body as { name: string; description?: string; dependencies?: string[] };
        try {
          await platform.packages.ensurePackage(body.name, body);
        } catch (error) {
          return refused(reply, error);
        }
        return reply.code(201).send({ name: body.name });
      },
    );

    app.get("/api/packages/:name/schemas", async (request, reply) => {
      if (!adminOnly(request, reply)) return reply;
      const { name } = request.params as { name: string };
      try {
        return { items: await platform.packages.getSchemas(name) };
      } catch (error) {
        return refused(reply, error);
      }
    });

    app.put(
      "/api/packages/:name/schemas/:schema",
      {
        schema: {
          body: {
            type: "object",
            required: ["kind", "body"],
            additionalProperties: false,
            properties: { kind: { type: "string", enum: ["source", "process"] }, caption: { type: "string", maxLength: 250 }, body: { type: "string", maxLength: 1048576 } },
          },
        },
      },
      async (request, reply) => {
        if (!adminOnly(request, reply)) return reply;
        const { name, schema } = request.params as { name: string; schema: string };
        const body = request.body as { kind: "source" | "process"; caption?: string; body: string };
        try {
          await platform.packages.saveSchema(name, { name: schema, kind: body.kind, caption: body.caption ?? schema, body: body.body }, request.session?.user.id ?? null);
        } catch (error) {
          return refused(reply, error);
        }
        return { saved: true };
      },
    );

    // A saved schema removed from the package (its published builds keep theirs until the next publish).
    app.delete("/api/packages/:name/schemas/:schema", async (request, reply) => {
      if (!adminOnly(request, reply)) return reply;
      const { name, schema } = request.params as { name: string; schema: string };
      try {
        if (!(await platform.packages.deleteSchema(name, schema))) {
          return reply.code(404).send({ error: `package ${name} has no schema named ${JSON.stringify(schema)}` });
        }
      } catch (error) {
        return refused(reply, error);
      }
      return { deleted: true };
    });

    app.post("/api/packages/:name/publish", async (request, reply) => {
      if (!adminOnly(request, reply)) return reply;
      const { name } = request.params as { name: string };
      try {
        return await platform.packages.publish(name, request.session?.user.id ?? null);
      } catch (error) {
        return refused(reply, error);
      }
    });
  };
}
