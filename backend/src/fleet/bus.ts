/**
 * The fleet bus: how one back-end process tells the others (and its own push and event hubs) that
 * something happened. In one process it is an in-memory fan-out; on PostgreSQL it is LISTEN/NOTIFY
 * (store/postgres-bus.ts), so a halt issued through process 1 reaches terminals held by process 2.
 *
 * Messages are small JSON documents (PostgreSQL's NOTIFY payload limit is 8,000 bytes): they name
 * what changed (a halt id, a terminal id), and receivers read the details from the store.
 */
import { z } from 'zod';

export const BusMessageSchema = z.discriminatedUnion('type', [
  /** Outbox rows were written for this halt (or resume notice): push them to connected terminals. */
  z.strictObject({ type: z.literal('outbox'), haltId: z.string().min(1).max(128) }),
  /** A dashboard event (verdict, halt, acknowledgement, stale, velocity, correlation). */
  z.strictObject({
    type: z.literal('event'),
    event: z.record(z.string(), z.unknown()),
  }),
  /** A terminal connected on `instanceId`: any other process holding it drops its connection. */
  z.strictObject({
    type: z.literal('connected'),
    terminalId: z.string().min(1).max(128),
    connectionId: z.string().min(1).max(128),
    instanceId: z.string().min(1).max(128),
  }),
]);
export type BusMessage = z.infer<typeof BusMessageSchema>;

export interface Bus {
  /** Delivers to every subscriber of every process, this one included. */
  publish(message: BusMessage): Promise<void>;
  /** Returns an unsubscribe function. Handlers must not throw; a thrown error is swallowed. */
  subscribe(handler: (message: BusMessage) => void): () => void;
  close(): Promise<void>;
}

/** One process: synchronous in-memory fan-out (delivered on a microtask, like a real bus). */
export function createMemoryBus(): Bus {
  const handlers = new Set<(message: BusMessage) => void>();
  return {
    publish(message) {
      const parsed = BusMessageSchema.parse(message);
      queueMicrotask(() => {
        for (const h of handlers) {
          try {
            h(parsed);
          } catch {
            // a subscriber's failure is its own
          }
        }
      });
      return Promise.resolve();
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    close() {
      handlers.clear();
      return Promise.resolve();
    },
  };
}
