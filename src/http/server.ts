import Fastify, { type FastifyInstance } from "fastify";
import type { Runtime } from "../runtime/runtime.ts";

export interface HttpServerOptions {
  readonly runtime: Runtime;
}

/** The HTTP server of `underway start`. */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const { runtime } = options;
  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024 });

  app.get("/healthz", async (_request, reply) => {
    try {
      await runtime.driver.ping();
      return { status: "ok", store: runtime.driver.dialect, worker: runtime.worker ? { id: runtime.worker.id, active: runtime.worker.activeCount } : null };
    } catch (error) {
      return reply.code(503).send({ status: "unavailable", error: (error as Error).message });
    }
  });

  return app;
}
