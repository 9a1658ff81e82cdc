/**
 * Prometheus metrics (prom-client), one registry per app instance so tests can build many apps.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly attestations: Counter<'tier'>;
  readonly ticketsIssued: Counter<'use'>;
  readonly transactions: Counter<'outcome'>;
  readonly halts: Counter<'source'>;
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
  };
}
