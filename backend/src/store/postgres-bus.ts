/**
 * The fleet bus over PostgreSQL LISTEN/NOTIFY: every back-end process on one database (and schema)
 * sees every message, so a halt issued through process 1 reaches terminals held by process 2.
 *
 * - One dedicated client LISTENs on the channel; when it drops it reconnects with exponential backoff
 *   (100 ms doubling to 5 s, with jitter). Messages sent while it is down are not replayed: receivers
 *   treat the bus as a wake-up and read what changed from the store (the outbox is the durable part);
 *   `onReconnect` handlers run once the listener is back, so the push hub re-sends pending messages.
 * - NOTIFY goes through a small pool; a payload is at most 7,999 bytes (PostgreSQL's limit is 8,000).
 *   Messages published in the same turn of the event loop go out together, in order, in one
 *   statement (`SELECT pg_notify(channel, p) FROM unnest($payloads)`, up to 256 at a time): a fan-out
 *   of a thousand acknowledgement events costs a few round trips, not a thousand.
 * - The payload is an envelope `{"v":1,"from":<bus id>,"n":<seq>,"msg":<BusMessage>}`. The publisher delivers to
 *   its own subscribers at once and skips the echo of its own envelope that LISTEN brings back, so a
 *   local subscriber gets each message exactly once, even while the listener is reconnecting.
 * - Incoming payloads are parsed with zod (BusMessageSchema); a malformed one is dropped and counted
 *   (`stats().dropped`, `onWarning`), never thrown.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { BusMessageSchema, type Bus, type BusMessage } from '../fleet/bus';
import { checkPostgresUrl } from './postgres';
import { StoreError } from './types';

/** PostgreSQL's NOTIFY payload limit is 8,000 bytes (less than that, strictly). */
export const MAX_BUS_PAYLOAD_BYTES = 7999;
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

const EnvelopeSchema = z.strictObject({
  v: z.literal(1),
  from: z.string().min(1).max(64),
  /** Per-bus sequence number: identical payloads in one transaction would be collapsed by PostgreSQL. */
  n: z.number().int().nonnegative(),
  msg: BusMessageSchema,
});

export interface PostgresBusOptions {
  readonly url: string;
  /** The NOTIFY channel (a lower-case identifier); default `pos_bus_<schema>`. */
  readonly channel?: string;
  /** The store's schema, naming the default channel so isolated schemas get isolated buses. */
  readonly schema?: string;
  /** Told (without payload contents) about dropped messages, lost connections and reconnects. */
  readonly onWarning?: (message: string) => void;
}

export interface PostgresBusStats {
  readonly published: number;
  readonly received: number;
  readonly dropped: number;
  readonly reconnects: number;
  readonly listening: boolean;
}

export interface PostgresBus extends Bus {
  readonly channel: string;
  stats(): PostgresBusStats;
}

/** The default channel for a schema (every process on one schema shares it). */
export function busChannelFor(schema: string): string {
  return `pos_bus_${schema}`.slice(0, 63);
}

/** Connects the listener (rejects when PostgreSQL is unreachable) and resolves to the bus. */
export async function createPostgresBus(options: PostgresBusOptions): Promise<PostgresBus> {
  const checked = checkPostgresUrl(options.url);
  if (!checked.ok) throw new StoreError('POS_ERR_STORE', checked.detail);
  const channel = options.channel ?? busChannelFor(options.schema ?? 'public');
  if (!CHANNEL.test(channel)) throw new StoreError('POS_ERR_STORE', 'invalid bus channel name');
  const warn = options.onWarning ?? ((): void => undefined);
  const id = randomUUID();
  const handlers = new Set<(message: BusMessage) => void>();
  const reconnectHandlers = new Set<() => void>();
  const counts = { published: 0, received: 0, dropped: 0, reconnects: 0 };
  const pool = new pg.Pool({ connectionString: options.url, max: 2, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => warn('bus: a pooled NOTIFY connection failed'));

  let listener: pg.Client | undefined;
  let closed = false;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  let seq = 0;
  /** Payloads waiting for the next flush, each with its publisher's settle functions. */
  let queue: { payload: string; done: (error?: unknown) => void }[] = [];
  let flushing = false;
  const BATCH = 256;

  const flush = async (): Promise<void> => {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length > 0) {
        const batch = queue.slice(0, BATCH);
        queue = queue.slice(batch.length);
        try {
          await pool.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [
            channel,
            batch.map((b) => b.payload),
          ]);
          for (const b of batch) b.done();
        } catch (e) {
          for (const b of batch) b.done(e);
        }
      }
    } finally {
      flushing = false;
    }
  };

  const deliver = (message: BusMessage): void => {
    for (const h of handlers) {
      try {
        h(message);
      } catch {
        // a subscriber's failure is its own
      }
    }
  };

  const onNotification = (n: pg.Notification): void => {
    if (n.channel !== channel) return;
    let parsed: z.infer<typeof EnvelopeSchema>;
    try {
      const r = EnvelopeSchema.safeParse(JSON.parse(n.payload ?? ''));
      if (!r.success) throw new Error('schema');
      parsed = r.data;
    } catch {
      counts.dropped++;
      warn('bus: dropped a malformed message');
      return;
    }
    if (parsed.from === id) return; // delivered locally when published
    counts.received++;
    deliver(parsed.msg);
  };

  const connect = async (): Promise<void> => {
    const client = new pg.Client({
      connectionString: options.url,
      connectionTimeoutMillis: 10_000,
      application_name: `pos-bus ${channel}`,
    });
    client.on('error', () => undefined); // 'end' follows and schedules the reconnect
    client.on('notification', onNotification);
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (e) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
      throw e;
    }
    client.once('end', () => {
      if (listener === client) listener = undefined;
      if (!closed) {
        warn('bus: the LISTEN connection was lost; reconnecting');
        schedule();
      }
    });
    if (closed) {
      await client.end().catch(() => undefined);
      return;
    }
    listener = client;
    attempt = 0;
  };

  const schedule = (): void => {
    if (closed || timer !== undefined) return;
    const delay = Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt++;
    timer = setTimeout(() => {
      timer = undefined;
      connect().then(
        () => {
          counts.reconnects++;
          warn('bus: LISTEN connection restored');
          // Messages NOTIFYed while the listener was down are lost: subscribers re-read the store.
          for (const h of reconnectHandlers) {
            try {
              h();
            } catch {
              // a subscriber's failure is its own
            }
          }
        },
        () => schedule(),
      );
    }, delay);
    timer.unref();
  };

  try {
    await connect();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }

  return {
    channel,
    async publish(message, options) {
      const msg = BusMessageSchema.parse(message);
      const payload = JSON.stringify({ v: 1, from: id, n: seq++, msg });
      if (Buffer.byteLength(payload) > MAX_BUS_PAYLOAD_BYTES) {
        throw new StoreError('POS_ERR_STORE', 'bus message larger than the NOTIFY payload limit');
      }
      // Local subscribers first (on a microtask, like the in-memory bus), then every other process.
      if (options?.remoteOnly !== true) queueMicrotask(() => deliver(msg));
      counts.published++;
      const sent = new Promise<void>((resolve, reject) => {
        queue.push({
          payload,
          done: (error) =>
            error === undefined
              ? resolve()
              : reject(error instanceof Error ? error : new Error('notify failed')),
        });
      });
      if (queue.length === 1 && !flushing) setImmediate(() => void flush());
      await sent;
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    onReconnect(handler) {
      reconnectHandlers.add(handler);
      return () => reconnectHandlers.delete(handler);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      handlers.clear();
      reconnectHandlers.clear();
      const l = listener;
      listener = undefined;
      if (l !== undefined) await l.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
    stats: () => ({ ...counts, listening: listener !== undefined }),
  };
}
