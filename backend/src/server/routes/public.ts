/**
 * Unauthenticated routes: liveness, readiness, metrics (unless a scrape token is set: app.ts), the
 * OpenAPI document and the JWKS.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Ctx } from '../context';

const JwkOut = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string(),
  y: z.string(),
  kid: z.string(),
  alg: z.literal('ES256'),
  use: z.literal('sig'),
});

export function registerPublicRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process answers',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: the store answers (and can be written) and a ticket-signing key is loaded',
        response: {
          200: z.object({
            status: z.enum(['ready', 'not-ready']),
            store: z.boolean(),
            keys: z.boolean(),
            engine: z.string(),
          }),
          503: z.object({
            status: z.enum(['ready', 'not-ready']),
            store: z.boolean(),
            keys: z.boolean(),
            engine: z.string(),
            fault: z
              .enum(['unavailable', 'full', 'read-only'])
              .optional()
              .describe('why the store is not ready: unreachable, disk full, or not writable'),
          }),
        },
      },
    },
    async (_request, reply) => {
      const store = await ctx.store.ping();
      const keys = ctx.keys.ready();
      const ready = store && keys;
      const fault = store ? undefined : (ctx.store.lastFault?.() ?? 'unavailable');
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not-ready',
        store,
        keys,
        engine: ctx.store.engine,
        ...(fault === undefined ? {} : { fault }),
      });
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['health'], summary: 'Prometheus metrics', hide: false } },
    async (_request, reply) => {
      const body = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(body);
    },
  );

  app.get(
    '/openapi.json',
    { schema: { tags: ['meta'], summary: 'This API as OpenAPI 3.1' } },
    (_request, reply) => reply.type('application/json; charset=utf-8').send(appIn.swagger()),
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['keys'],
        summary: 'Ticket-signing public keys (active and recently retired)',
        response: { 200: z.object({ keys: z.array(JwkOut) }) },
      },
    },
    (_request, reply) => {
      void reply.header('cache-control', 'public, max-age=60');
      return ctx.keys.jwks(ctx.clock.now());
    },
  );
}
