import type { FastifyInstance } from "fastify";
import { EntitySecurityError } from "../../platform/entities/errors.ts";
import { EntitySchemaQuery } from "../../platform/entities/query.ts";
import type { Platform } from "../../platform/platform.ts";

const LOOKUPS = ["Type", "ActivityCategory", "Status", "Priority", "Owner", "Author"] as const;
const KEYS: Record<(typeof LOOKUPS)[number], string> = {
  Type: "type",
  ActivityCategory: "category",
  Status: "status",
  Priority: "priority",
  Owner: "owner",
  Author: "author",
};

/** The Activities section's data: the records the signed-in user may read, newest first. */
export function activityRoutes(platform: Platform) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get(
      "/api/activities",
      {
        schema: {
          querystring: {
            type: "object",
            additionalProperties: false,
            properties: {
              title: { type: "string", maxLength: 250 },
              limit: { type: "integer", minimum: 1, maximum: 200, default: 50 },
              offset: { type: "integer", minimum: 0, maximum: 1_000_000, default: 0 },
            },
          },
        },
      },
      async (request, reply) => {
        const session = request.session;
        if (!session) return reply.code(401).send({ error: "sign in first" });
        const { title, limit, offset } = request.query as { title?: string; limit: number; offset: number };
        const esq = new EntitySchemaQuery(platform.userConnection(session.user), "Activity")
          .addColumn("Title")
          .addColumn("StartDate")
          .addColumn("DueDate")
          .addColumn("CreatedOn")
          .orderBy("CreatedOn", "desc")
          .setPaging(offset, limit + 1);
        for (const lookup of LOOKUPS) esq.addColumn(`${lookup}Id`).addColumn(`${lookup}.Name`);
        if (title) esq.addFilter("Title", "contains", title);
        let rows;
        try {
          rows = await esq.getEntityCollection();
        } catch (error) {
          if (error instanceof EntitySecurityError) return reply.code(403).send({ error: error.message });
          throw error;
        }
        const items = rows.slice(0, limit).map((r) => ({
          id: r.Id,
          title: r.Title,
          startDate: r.StartDate,
          dueDate: r.DueDate,
          createdOn: r.CreatedOn,
          ...Object.fromEntries(LOOKUPS.map((l) => [KEYS[l], r[`${l}Id`] ? { id: r[`${l}Id`], name: r[`${l}.Name`] ?? null } : null])),
        }));
        return { items, nextOffset: rows.length > limit ? offset + limit : null };
      },
    );
  };
}
