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
  /** The ticket-signing keys changed (a rotation): every process reloads its key ring from the store. */
  z.strictObject({ type: z.literal('keys') }),
  /** Push: `instanceId` is asked whether its connection `connectionId` of the terminal answers a ping. */
  z.strictObject({
    type: z.literal('probe'),
    requestId: z.string().min(1).max(128),
    terminalId: z.string().min(1).max(128),
    connectionId: z.string().min(1).max(128),
    instanceId: z.string().min(1).max(128),
    from: z.string().min(1).max(128),
  }),
  /** Push: the answer to a probe, for the asking process `instanceId` (dead: the row was released). */
  z.strictObject({
    type: z.literal('probe-result'),
    requestId: z.string().min(1).max(128),
    instanceId: z.string().min(1).max(128),
    alive: z.boolean(),
  }),
]);
export type BusMessage = z.infer<typeof BusMessageSchema>;

export interface PublishOptions {
  readonly remoteOnly?: boolean;
}

export interface Bus {
  /**
   * Delivers to every subscriber of every process, this one included; `remoteOnly`: to the other
   * processes only (the caller has already handled it here, e.g. the push hub got the outbox rows).
   */
  publish(message: BusMessage, options?: PublishOptions): Promise<void>;
  /** Returns an unsubscribe function. Handlers must not throw; a thrown error is swallowed. */
  subscribe(handler: (message: BusMessage) => void): () => void;
  /**
   * Called after the bus lost its connection to the other processes and got it back: messages
   * published meanwhile were not received, so a subscriber re-reads what it needs from the store (the
   * push hub re-sends its terminals' pending outbox). Absent on a bus that cannot lose messages (the
   * in-memory one). Returns an unsubscribe function.
   */
  onReconnect?(handler: () => void): () => void;
  close(): Promise<void>;
}

/** One process: synchronous in-memory fan-out (delivered on a microtask, like a real bus). */
export function createMemoryBus(): Bus {
  const handlers = new Set<(message: BusMessage) => void>();
  return {
    publish(message, options) {
      const parsed = BusMessageSchema.parse(message);
      if (options?.remoteOnly === true) return Promise.resolve(); // one process: nobody else
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
