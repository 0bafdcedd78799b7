import type { FastifyInstance } from "fastify";
import type { Runtime } from "../../runtime/runtime.ts";

/**
 * GET /metrics: the runtime's Prometheus metrics (text exposition format). Outside /api/, so it
 * needs no session: scrapers reach it on the internal network, as /healthz.
 */
export function metricsRoutes(runtime: Runtime) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get("/metrics", async (_request, reply) => {
      const { contentType, body } = await runtime.metrics.render();
      return reply.header("content-type", contentType).header("cache-control", "no-store").send(body);
    });
  };
}
