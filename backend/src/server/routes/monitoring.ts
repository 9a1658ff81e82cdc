/**
 * Monitoring routes for the dashboard: the live event stream (`GET /v1/events`, Server-Sent Events fed
 * from the fleet bus) and the fleet queries (`GET /v1/terminals`, `GET /v1/fleet/summary`). Every
 * route is tenant-filtered: a merchant-scoped principal sees its merchant's terminals and events only;
 * fleet-wide events (merchantId null) reach provider-wide principals only. docs/monitoring.md.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FleetEventSchema, type FleetEvent } from '../../fleet/events';
import { TERMINAL_STATES, type TerminalQuery, type TerminalRow } from '../../store/types';
import { canReachMerchant, requirePrincipal, type Ctx, type Principal } from '../context';
import { ServiceError } from '../http-errors';

const Security = [{ operatorToken: [] }, { sessionCookie: [] }];
const Id = z.string().min(1).max(128);

export interface EventStreamOptions {
  /** A comment line every this many ms keeps proxies from closing an idle stream (default 15 s). */
  readonly heartbeatMs?: number;
  /** Events queued for a client whose connection is congested; one more and it is dropped (default 256). */
  readonly queueMax?: number;
  /** Concurrent event streams per process (default 1000; one more answers 503). */
  readonly maxStreams?: number;
  /**
   * Concurrent event streams per principal (one API token, or one user's sessions together) per
   * process (default 5; one more answers 429 POS_ERR_EVENTS_TOO_MANY), so one caller cannot take the
   * global slots from the others.
   */
  readonly maxStreamsPerPrincipal?: number;
}

/** True when the principal may see the event: its merchant's, or any for a provider-wide principal. */
export function eventVisibleTo(principal: Principal, event: FleetEvent): boolean {
  return event.merchantId === null
    ? principal.merchantId === null
    : canReachMerchant(principal, event.merchantId);
}

/** One SSE message: `id`, `event` (the event type) and one `data` line of JSON (JSON has no raw newline). */
export function sseFrame(id: number, event: FleetEvent): string {
  return `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** What an SSE client writes to (the HTTP response; a fake in tests). */
export interface SseSink {
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
  end(): void;
}

/**
 * One event-stream client with a bounded queue: frames go straight to the sink while it accepts
 * them; while it is congested (write returned false, no drain yet) they queue; when the queue is full
 * the client is dropped (its connection ended) rather than letting memory grow.
 */
export class SseClient {
  private readonly queue: string[] = [];
  private congested = false;
  private closed = false;

  constructor(
    private readonly sink: SseSink,
    private readonly queueMax: number,
    private readonly onClose: (reason: 'dropped' | 'closed') => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Writes or queues a frame; false when the client is (now) closed. */
  send(frame: string): boolean {
    if (this.closed) return false;
    if (this.congested) {
      if (this.queue.length >= this.queueMax) {
        this.close('dropped');
        return false;
      }
      this.queue.push(frame);
      return true;
    }
    if (!this.sink.write(frame)) {
      this.congested = true;
      this.sink.once('drain', () => this.flush());
    }
    return true;
  }

  private flush(): void {
    this.congested = false;
    while (!this.closed && this.queue.length > 0) {
      const frame = this.queue.shift() as string;
      if (!this.sink.write(frame)) {
        this.congested = true;
        this.sink.once('drain', () => this.flush());
        return;
      }
    }
  }

  close(reason: 'dropped' | 'closed' = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    try {
      this.sink.end();
    } catch {
      // the connection is gone already
    }
    this.onClose(reason);
  }
}

const TerminalOut = z.object({
  terminalId: z.string(),
  merchantId: z.string(),
  readerSerial: z.string(),
  state: z.enum(TERMINAL_STATES),
  stateReason: z.string().nullable(),
  appVersion: z.string().nullable(),
  lastTier: z.string().nullable().describe("the tier of the terminal's last verdict"),
  lastAttestedAt: z.number().int().nullable(),
  nextDueAt: z.number().int().nullable().describe('ms since the epoch: the next attestation is due by then'),
  stale: z.boolean(),
  staleAt: z.number().int().nullable(),
  attestationIntervalS: z.number().int(),
  createdAt: z.number().int(),
});

function terminalOut(t: TerminalRow): z.infer<typeof TerminalOut> {
  return {
    terminalId: t.id,
    merchantId: t.merchantId,
    readerSerial: t.readerSerial,
    state: t.state,
    stateReason: t.stateReason,
    appVersion: t.appVersion ?? null,
    lastTier: t.lastTier ?? null,
    lastAttestedAt: t.lastAttestedAt,
    nextDueAt: t.nextDueAt ?? null,
    stale: (t.staleAt ?? null) !== null,
    staleAt: t.staleAt ?? null,
    attestationIntervalS: t.intervalS,
    createdAt: t.createdAt,
  };
}

const TerminalsQuery = z.strictObject({
  merchant: Id.optional(),
  state: z.enum(TERMINAL_STATES).optional(),
  stale: z.enum(['true', 'false']).optional(),
  appVersion: z.string().min(1).max(64).optional(),
  tier: z.enum(['affirming', 'warning', 'contraindicated', 'none']).optional(),
  after: Id.optional().describe('keyset paging: terminals with an id after this one (the `next` of a page)'),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

const SummaryOut = z.object({
  merchantId: z.string().nullable().describe('null: the whole fleet'),
  at: z.number().int(),
  terminals: z.object({
    total: z.number().int(),
    trusted: z.number().int().describe('active, live, last verdict affirming'),
    warning: z.number().int().describe('active, live, last verdict warning'),
    halted: z.number().int(),
    resumePending: z.number().int(),
    decommissioned: z.number().int().describe('retired for good (counted in total)'),
    stale: z.number().int().describe('active but stale (missed the attestation deadline by the margin)'),
    other: z.number().int().describe('active, live, no affirming or warning verdict yet'),
  }),
});

/**
 * The merchant a query is limited to: the principal's own for a merchant-scoped principal (another
 * merchant answers 404 as if absent), else the requested one (404 when unknown) or none.
 */
async function scopeMerchant(
  ctx: Ctx,
  principal: Principal,
  requested: string | undefined,
): Promise<string | undefined> {
  if (requested !== undefined) {
    if (!canReachMerchant(principal, requested) || (await ctx.store.getMerchant(requested)) === undefined) {
      throw new ServiceError(404, 'POS_ERR_MERCHANT_UNKNOWN');
    }
    return requested;
  }
  return principal.merchantId ?? undefined;
}

export function registerMonitoringRoutes(
  appIn: FastifyInstance,
  ctx: Ctx,
  options: EventStreamOptions = {},
): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const queueMax = options.queueMax ?? 256;
  const maxStreams = options.maxStreams ?? 1000;
  const maxPerPrincipal = options.maxStreamsPerPrincipal ?? 5;
  const streams = new Set<SseClient>();
  /** Open streams per principal actor; an entry is removed when its count drops to 0. */
  const perPrincipal = new Map<string, number>();
  let sequence = 0;

  // Open streams never go idle: end them when the app closes so it can.
  app.addHook('preClose', (done) => {
    for (const s of [...streams]) s.close();
    done();
  });

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['operator'],
        summary:
          'Live fleet events (Server-Sent Events): verdicts, halts, acknowledgements, stale, velocity, correlation',
        description:
          'text/event-stream (send Accept: text/event-stream; anything else answers 406). Each message: `id` (per connection), `event` (the event type), `data` (the event as JSON). A comment line every 15 s. A merchant-scoped caller gets its merchant’s events only; fleet-wide events go to provider-wide callers. Last-Event-ID is not supported: after a reconnect, read the current state with the fleet queries.',
        security: Security,
      },
    },
    async (request, reply) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const accept = request.headers.accept;
      if (typeof accept !== 'string' || !accept.toLowerCase().includes('text/event-stream')) {
        throw new ServiceError(406, 'POS_ERR_EVENTS_NOT_ACCEPTABLE');
      }
      const held = perPrincipal.get(principal.actor) ?? 0;
      if (held >= maxPerPrincipal) throw new ServiceError(429, 'POS_ERR_EVENTS_TOO_MANY');
      if (streams.size >= maxStreams)
        throw new ServiceError(503, 'POS_ERR_UNAVAILABLE', 'too many event streams');
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store, no-transform',
        'x-content-type-options': 'nosniff',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      // Heartbeat; and the caller must still be allowed (a revoked token or ended session ends the stream).
      const heartbeat = setInterval(() => {
        requirePrincipal(ctx, request, 'read').then(
          () => client.send(': heartbeat\n\n'),
          () => client.close(),
        );
      }, heartbeatMs);
      heartbeat.unref();
      let unsubscribe = (): void => undefined;
      const client = new SseClient(raw, queueMax, (reason) => {
        streams.delete(client);
        const left = (perPrincipal.get(principal.actor) ?? 1) - 1;
        if (left > 0) perPrincipal.set(principal.actor, left);
        else perPrincipal.delete(principal.actor);
        unsubscribe();
        clearInterval(heartbeat);
        if (reason === 'dropped') {
          request.log.warn({ queueMax }, 'event stream dropped: the client did not keep up');
          raw.destroy();
        }
      });
      // Synchronous from the checks above to here: no other request can take the slot in between.
      streams.add(client);
      perPrincipal.set(principal.actor, held + 1);
      raw.on('close', () => client.close());
      client.send('retry: 5000\n: connected\n\n');
      unsubscribe = ctx.bus.subscribe((message) => {
        if (message.type !== 'event') return;
        const parsed = FleetEventSchema.safeParse(message.event);
        if (!parsed.success || !eventVisibleTo(principal, parsed.data)) return;
        client.send(sseFrame(++sequence, parsed.data));
      });
      return reply;
    },
  );

  app.get(
    '/v1/terminals',
    {
      schema: {
        tags: ['operator'],
        summary:
          'List terminals (tenant-filtered), by merchant, state, stale, app version, last tier; paged by id',
        security: Security,
        querystring: TerminalsQuery,
        response: {
          200: z.object({
            terminals: z.array(TerminalOut),
            next: z.string().nullable().describe('pass as `after` for the next page; null on the last'),
          }),
        },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const q = request.query;
      const merchantId = await scopeMerchant(ctx, principal, q.merchant);
      const limit = q.limit ?? 50;
      const query: TerminalQuery = {
        limit,
        ...(merchantId === undefined ? {} : { merchantId }),
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.stale === undefined ? {} : { stale: q.stale === 'true' }),
        ...(q.appVersion === undefined ? {} : { appVersion: q.appVersion }),
        ...(q.tier === undefined ? {} : { lastTier: q.tier }),
        ...(q.after === undefined ? {} : { afterId: q.after }),
      };
      const rows = await ctx.store.listTerminals(query);
      const last = rows.at(-1);
      return {
        terminals: rows.map(terminalOut),
        next: rows.length === limit && last !== undefined ? last.id : null,
      };
    },
  );

  app.get(
    '/v1/fleet/summary',
    {
      schema: {
        tags: ['operator'],
        summary:
          'Terminal counts by state: trusted, warning, halted, resume-pending, stale (a merchant caller: its own)',
        security: Security,
        querystring: z.strictObject({ merchant: Id.optional() }),
        response: { 200: SummaryOut },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const merchantId = await scopeMerchant(ctx, principal, request.query.merchant);
      const m = merchantId === undefined ? {} : { merchantId };
      const count = (q: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<number> =>
        ctx.store.countTerminalsWhere({ ...m, ...q });
      const [total, trusted, warning, halted, resumePending, decommissioned, stale, live] = await Promise.all(
        [
          count({}),
          count({ state: 'active', stale: false, lastTier: 'affirming' }),
          count({ state: 'active', stale: false, lastTier: 'warning' }),
          count({ state: 'halted' }),
          count({ state: 'resume-pending' }),
          count({ state: 'decommissioned' }),
          count({ state: 'active', stale: true }),
          count({ state: 'active', stale: false }),
        ],
      );
      return {
        merchantId: merchantId ?? null,
        at: ctx.clock.now(),
        terminals: {
          total,
          trusted,
          warning,
          halted,
          resumePending,
          decommissioned,
          stale,
          other: Math.max(0, live - trusted - warning),
        },
      };
    },
  );
}
