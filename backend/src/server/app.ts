/**
 * `buildApp(options)`: the Fastify service with everything injected (store, keys, clock, config), so
 * tests build it in-process and drive it with `app.inject`.
 */
import { randomUUID } from 'node:crypto';
import type https from 'node:https';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type onRequestAsyncHookHandler,
} from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { KeyRing } from '../keys/keyring';
import type { Store } from '../store/types';
import { DEFAULT_VELOCITY_RULES } from '../acquirer/velocity';
import { purgeExpiredVelocityEvents, storeVelocity } from '../store/velocity';
import { createMemoryBus, type Bus } from '../fleet/bus';
import { createFleetControl } from '../fleet/control';
import { registerPush, type PushOptions } from '../fleet/push';
import { startLiveness } from '../fleet/liveness';
import {
  DEFAULT_CONFIG,
  makeAudit,
  makeAudited,
  newId,
  type Clock,
  type Ctx,
  type ServiceConfig,
} from './context';
import {
  createAcquirerHost,
  createReaderStatusVerifier,
  developmentBdks,
  type AcquirerHost,
  type ReaderStatusVerifier,
} from './domain';
import { BACKEND_ERRORS } from '../errors';
import { sendError, ServiceError } from './http-errors';
import { createMetrics, METRICS_PATH, metricsTokenCheck } from './metrics';
import { dashboardRoutes } from './routes/dashboard';
import { registerFleetRoutes } from './routes/fleet';
import { registerMonitoringRoutes, type EventStreamOptions } from './routes/monitoring';
import { registerOperatorRoutes } from './routes/operator';
import { registerAuthRoutes } from './auth/routes';
import { registerUserRoutes } from './routes/users';
import { registerPublicRoutes } from './routes/public';
import { registerTerminalRoutes } from './routes/terminal';

export interface BuildAppOptions {
  readonly store: Store;
  readonly keys: KeyRing;
  readonly clock?: Clock;
  readonly config: Partial<ServiceConfig> & Pick<ServiceConfig, 'issuer'>;
  /** A pino logger (the CLI's); default: no logging. */
  readonly logger?: FastifyBaseLogger;
  /** The acquirer host; default: D's simulation with the development BDK, velocity on the store. */
  readonly acquirer?: AcquirerHost;
  /** DER certificates of the reader manufacturer CA roots; none: reader status is unknown (no PIN-entry tickets). */
  readonly readerCaRoots?: readonly Uint8Array[];
  /** Verifies the reader's signed status in evidence (default: the reader protocol's, over `readerCaRoots`). */
  readonly readerStatusVerifier?: ReaderStatusVerifier;
  /** HMAC key of card tokens (velocity per card); give a stable one so counts survive restarts. */
  readonly cardTokenKey?: Uint8Array;
  /** The fleet bus (default: in-memory, one process; PostgreSQL deployments pass LISTEN/NOTIFY's). */
  readonly bus?: Bus;
  /** This process's id for push connections (default: random). */
  readonly instanceId?: string;
  /** Push connection heartbeat and liveness timings (default: fleet/push.ts). */
  readonly push?: PushOptions;
  /** The live event stream's heartbeat, queue and stream limits (default: routes/monitoring.ts). */
  readonly events?: EventStreamOptions;
  /** Node process metrics in /metrics (default true; tests turn it off). */
  readonly defaultMetrics?: boolean;
  /**
   * The metrics scrape token (32-1024 visible ASCII characters; `pos-backend --metrics-token-file`):
   * GET /metrics then needs `Authorization: Bearer <token>`, and nothing else opens it (operator tokens
   * and sessions do not). Default: /metrics is public.
   */
  readonly metricsToken?: string;
  /**
   * In-process TLS (PEM certificate chain and private key): the server speaks HTTPS, TLS 1.2 or newer,
   * Node's default cipher list. Default: plain HTTP (TLS at a reverse proxy).
   */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

/** The lowest TLS version the service accepts with in-process TLS. */
export const TLS_MIN_VERSION = 'TLSv1.2';

export const systemClock: Clock = { now: () => Date.now() };

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  // Checked first, before anything is made: a malformed token throws (the CLI parses its file earlier).
  const metricsAllowed =
    options.metricsToken === undefined ? undefined : metricsTokenCheck(options.metricsToken);
  const config: ServiceConfig = { ...DEFAULT_CONFIG, ...options.config };
  const clock = options.clock ?? systemClock;
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const velocity = storeVelocity(options.store);

  const acquirer =
    options.acquirer ??
    createAcquirerHost({
      bdks: developmentBdks(),
      velocity,
      ...(options.cardTokenKey === undefined ? {} : { tokenKey: options.cardTokenKey }),
    });
  const bus = options.bus ?? createMemoryBus();
  const audit = makeAudit(options.store, options.keys, clock, config.auditCheckpointEvery);
  const audited = makeAudited(options.store, options.keys, config.auditCheckpointEvery);
  const fleet = createFleetControl({
    store: options.store,
    bus,
    clock,
    newId,
    audited,
    onHalt: (source, terminals) => {
      metrics.halts.inc({ source }, terminals);
      metrics.haltOrders.inc({ source });
    },
    onDecommission: () => metrics.decommissions.inc(),
  });
  const ctx: Ctx = {
    store: options.store,
    keys: options.keys,
    clock,
    config,
    metrics,
    acquirer,
    readerCaRoots: options.readerCaRoots ?? [],
    readerStatusVerifier: options.readerStatusVerifier ?? createReaderStatusVerifier(),
    audit,
    audited,
    bus,
    instanceId: options.instanceId ?? randomUUID(),
    fleet,
  };

  const connectionsCheckingInterval = Math.min(
    5_000,
    Math.max(50, Math.floor(Math.min(config.headersTimeoutMs, config.requestTimeoutMs) / 4)),
  );
  const app = Fastify({
    ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
    bodyLimit: config.bodyLimit,
    // Slow clients (slowloris, a trickled body): Fastify's default requestTimeout is 0 (none), so a
    // client that sent its headers could hold the socket forever by never finishing its body. Node
    // checks these deadlines every connectionsCheckingInterval (a quarter of the shorter one, 50 ms to
    // 5 s); headersTimeout is set on the server below (Fastify has no option for it).
    requestTimeout: config.requestTimeoutMs,
    // With TLS, Fastify creates an https server from `https` (and ignores `http`), so the checking
    // interval goes there too. Ciphers stay Node's defaults; only the minimum version is raised.
    ...(options.tls === undefined
      ? { http: { connectionsCheckingInterval } }
      : {
          https: {
            cert: options.tls.cert,
            key: options.tls.key,
            minVersion: TLS_MIN_VERSION,
            connectionsCheckingInterval,
          } satisfies https.ServerOptions,
        }),
    // One trusted hop: request.ip is the address the nearest reverse proxy appended to X-Forwarded-For
    // (its right-most entry), never the left-most one, which the client writes (rate limits, logs).
    trustProxy: config.trustProxy ? (_address: string, hop: number) => hop < 1 : false,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Requests that arrive while closing get our 503 shape from the onRequest hook below.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 },
    // Errors the router raises before any route (a path parameter over maxParamLength, a malformed
    // URL): our error shape, not Fastify's own body (which echoed the whole path back).
    frameworkErrors: (error, request, reply) => {
      sendError(request, reply, error);
    },
    // Requests Node's HTTP parser refuses (malformed, headers too large) never reach Fastify's error
    // handler: answer them in the same shape.
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      if (!socket.writable) return;
      const answer =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? {
              status: '431 Request Header Fields Too Large',
              code: 'POS_ERR_REQUEST_TOO_LARGE',
              message: 'The request headers are too large.',
            }
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? {
                status: '408 Request Timeout',
                code: 'POS_ERR_REQUEST_TIMEOUT',
                message: BACKEND_ERRORS.POS_ERR_REQUEST_TIMEOUT,
              }
            : {
                status: '400 Bad Request',
                code: 'POS_ERR_REQUEST_MALFORMED',
                message: 'The request is not well-formed HTTP.',
              };
      const body = JSON.stringify({
        error: { code: answer.code, message: answer.message, requestId: randomUUID() },
      });
      socket.end(
        `HTTP/1.1 ${answer.status}\r\n` +
          `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `connection: close\r\n\r\n${body}`,
      );
    },
  }).withTypeProvider<ZodTypeProvider>();

  // Node's default (60 s) would leave headers trickled byte by byte a minute; never above requestTimeout.
  app.server.headersTimeout = Math.min(config.headersTimeoutMs, config.requestTimeoutMs);

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // JSON bodies are parsed here so the raw bytes stay available for the proof's body hash (`bh`).
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buf = body as Buffer;
    (request as typeof request & { rawBody?: Buffer }).rawBody = buf;
    try {
      done(null, JSON.parse(buf.toString('utf8')) as unknown);
    } catch {
      done(new ServiceError(400, 'POS_ERR_REQUEST_MALFORMED'), undefined);
    }
  });

  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));

  // The scrape token guards /metrics (and its HEAD mirror) before anything else of the route runs; the
  // OpenAPI document shows the route's security. A separate credential: operator tokens and sessions
  // do not open it, and the token opens nothing else.
  if (metricsAllowed !== undefined) {
    const guard: onRequestAsyncHookHandler = async (request, reply) => {
      if (metricsAllowed(request.headers.authorization)) return;
      void reply.header('www-authenticate', 'Bearer');
      throw new ServiceError(401, 'POS_ERR_METRICS_UNAUTHORIZED');
    };
    app.addHook('onRoute', (route) => {
      if (route.url !== METRICS_PATH) return;
      const own = route.onRequest;
      route.onRequest = own === undefined ? [guard] : [guard, ...(Array.isArray(own) ? own : [own])];
      route.schema = { ...route.schema, security: [{ metricsToken: [] }] };
    });
  }
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new ServiceError(404, 'POS_ERR_NOT_FOUND')),
  );

  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) {
      done();
      return;
    }
    void reply.header('connection', 'close');
    done(new ServiceError(503, 'POS_ERR_UNAVAILABLE'));
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });
  // Expired challenges and dashboard sessions are purged once a minute (single use is enforced by the
  // challenge's row, not by its absence; an expired session authenticates nothing, stored or not).
  const purge = setInterval(() => {
    void options.store.purgeChallenges(clock.now() - 60_000).catch(() => undefined);
    void options.store.purgeSessions(clock.now()).catch(() => undefined);
    // Velocity events older than every window (docs/backend.md "Store maintenance"); never rejects.
    const rules = options.acquirer === undefined ? DEFAULT_VELOCITY_RULES : undefined;
    void purgeExpiredVelocityEvents(options.store, clock.now(), { auth: config.auth, rules }, app.log).then(
      (purged) => metrics.velocityPurged.inc(purged ?? 0),
    );
  }, 60_000);
  purge.unref();
  // Liveness: stale terminals are marked (and alerted) by a sweeper over the store's deadlines.
  const liveness = startLiveness(ctx, (error) => app.log.warn({ err: error }, 'liveness sweep failed'));
  app.decorate('liveness', liveness);
  app.addHook('onClose', async () => {
    clearInterval(purge);
    await liveness.stop();
    if (options.bus === undefined) await bus.close();
    await options.store.close();
  });

  await app.register(helmet, { global: true });
  if (config.rateLimitPerMinute !== false) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      errorResponseBuilder: (_request, context) => ({
        statusCode: 429,
        code: 'POS_ERR_RATE_LIMITED',
        message: 'rate limited',
        retryAfter: context.ttl,
      }),
    });
  }
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pos-backend: attestation & monitoring service',
        description:
          'Enrollment, challenges, evidence appraisal, tickets, transactions, operator API. Errors: `{ "error": { "code", "message", "requestId" } }`.',
        version: '1',
      },
      components: {
        securitySchemes: {
          operatorToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'Operator API token (pos_<role>_...; docs/operators.md)',
          },
          sessionCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: '__Host-pos_session',
            description: 'Dashboard session (POST /v1/auth/login); unsafe methods also need X-CSRF-Token',
          },
          posProof: {
            type: 'apiKey',
            in: 'header',
            name: 'Pos-Proof',
            description: 'Device-key proof (docs/backend.md)',
          },
          posTicket: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description: 'PosTicket <session ticket>',
          },
          ...(metricsAllowed === undefined
            ? {}
            : {
                metricsToken: {
                  type: 'http',
                  scheme: 'bearer',
                  description:
                    'The metrics scrape token (pos-backend --metrics-token-file; docs/monitoring.md)',
                },
              }),
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  registerPublicRoutes(app, ctx);
  registerTerminalRoutes(app, ctx);
  registerOperatorRoutes(app, ctx);
  registerAuthRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerFleetRoutes(app, ctx);
  registerMonitoringRoutes(app, ctx, options.events);
  await registerPush(app, ctx, options.push);
  await app.register(dashboardRoutes, {});

  await app.ready();
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
