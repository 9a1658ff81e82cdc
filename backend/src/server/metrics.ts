/**
 * Prometheus metrics (prom-client), one registry per app instance so tests can build many apps.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly attestations: Counter<'tier'>;
  readonly ticketsIssued: Counter<'use'>;
  readonly transactions: Counter<'outcome'>;
  readonly halts: Counter<'source'>;
  readonly haltOrders: Counter<'source'>;
  readonly pushConnections: Gauge;
  readonly haltDelivery: Histogram<'kind'>;
  readonly staleTerminals: Gauge;
  readonly staleMarked: Counter;
  readonly correlationAlerts: Counter<'kind'>;
  readonly velocityAlerts: Counter<'rule' | 'action'>;
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
  };
}
