/**
 * Prometheus metrics (prom-client), one registry per app instance so tests can build many apps; and
 * the optional scrape token that guards `GET /metrics` (docs/monitoring.md "Protecting /metrics").
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { z } from 'zod';

/** The route the scrape token guards. */
export const METRICS_PATH = '/metrics';
/** Bounds of a scrape token, in characters (its file: at most this many bytes, newline included). */
export const METRICS_TOKEN_MIN_CHARS = 32;
export const METRICS_TOKEN_MAX_BYTES = 1024;

/**
 * A scrape token: 32 to 1024 visible ASCII characters (0x21-0x7E: no space, no control character),
 * so it travels unchanged in `Authorization: Bearer <token>` and in Prometheus's `credentials_file`
 * (which trims surrounding white space).
 */
export const MetricsTokenSchema = z
  .string()
  .min(METRICS_TOKEN_MIN_CHARS)
  .max(METRICS_TOKEN_MAX_BYTES)
  .regex(/^[\x21-\x7e]+$/);

/**
 * A scrape token file's text: one line, the token, optionally ended by one newline (LF or CRLF); the
 * whole file at most 1 KiB.
 */
export const MetricsTokenFileSchema = z
  .string()
  .max(METRICS_TOKEN_MAX_BYTES)
  .transform((text) => text.replace(/\r?\n$/, ''))
  .pipe(MetricsTokenSchema);

const BEARER_RE = /^Bearer +([\x21-\x7e]+)$/i;
const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * A check of an `Authorization` header against the scrape token. Both sides are hashed (SHA-256) and
 * the digests compared with `timingSafeEqual`, always once, whatever was presented: the time does not
 * depend on where or whether the presented token differs, nor on its length.
 */
export function metricsTokenCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = sha256(MetricsTokenSchema.parse(token));
  return (authorization) => {
    const presented = authorization === undefined ? undefined : BEARER_RE.exec(authorization)?.[1];
    const same = timingSafeEqual(sha256(presented ?? ''), expected);
    return presented !== undefined && same;
  };
}

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly attestations: Counter<'tier'>;
  readonly ticketsIssued: Counter<'use'>;
  readonly transactions: Counter<'outcome'>;
  readonly halts: Counter<'source'>;
  readonly haltOrders: Counter<'source'>;
  readonly decommissions: Counter;
  readonly pushConnections: Gauge;
  readonly haltDelivery: Histogram<'kind'>;
  readonly staleTerminals: Gauge;
  readonly staleMarked: Counter;
  readonly correlationAlerts: Counter<'kind'>;
  readonly velocityAlerts: Counter<'rule' | 'action'>;
  readonly velocityPurged: Counter;
}

export function createMetrics(options: { defaultMetrics: boolean }): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'pos_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'pos_http_request_duration_seconds',
      help: 'HTTP request duration, by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    attestations: new Counter({
      name: 'pos_attestations_total',
      help: 'Attestations appraised, by resulting trust tier',
      labelNames: ['tier'],
      registers: [registry],
    }),
    ticketsIssued: new Counter({
      name: 'pos_tickets_issued_total',
      help: 'Tickets signed, by use (session or pin-entry)',
      labelNames: ['use'],
      registers: [registry],
    }),
    transactions: new Counter({
      name: 'pos_transactions_total',
      help: 'Transactions authorized, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    halts: new Counter({
      name: 'pos_terminal_halts_total',
      help: 'Terminals halted, by source (policy, velocity, operator)',
      labelNames: ['source'],
      registers: [registry],
    }),
    haltOrders: new Counter({
      name: 'pos_halts_total',
      help: 'Halt orders (one per halt, any scope), by source (operator, policy, velocity, correlation, liveness)',
      labelNames: ['source'],
      registers: [registry],
    }),
    decommissions: new Counter({
      name: 'pos_terminal_decommissions_total',
      help: 'Terminals decommissioned (retired for good) by an operator',
      registers: [registry],
    }),
    pushConnections: new Gauge({
      name: 'pos_push_connections',
      help: 'Terminals holding a push connection to this process',
      registers: [registry],
    }),
    haltDelivery: new Histogram({
      name: 'pos_halt_delivery_seconds',
      help: 'From a halt (or lift) being ordered to the terminal acknowledging it, by message kind',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
      registers: [registry],
    }),
    staleTerminals: new Gauge({
      name: 'pos_terminals_stale',
      help: 'Terminals marked stale (missed their attestation deadline by the margin), as of the last liveness sweep',
      registers: [registry],
    }),
    staleMarked: new Counter({
      name: 'pos_terminals_stale_marked_total',
      help: 'Terminals this process marked stale (one alert each)',
      registers: [registry],
    }),
    correlationAlerts: new Counter({
      name: 'pos_correlation_alerts_total',
      help: 'Fleet correlation alerts, by kind (counter-replay, reader-serial-shared, ...)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    velocityAlerts: new Counter({
      name: 'pos_velocity_alerts_total',
      help: 'Velocity rules that fired on a transaction, by rule and action',
      labelNames: ['rule', 'action'],
      registers: [registry],
    }),
    velocityPurged: new Counter({
      name: 'pos_velocity_events_purged_total',
      help: 'Velocity events (login throttle, acquirer counters) this process deleted as older than every window',
      registers: [registry],
    }),
  };
}
