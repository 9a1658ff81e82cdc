/**
 * The terminals' push connection (`GET /v1/push`, WebSocket; protocol in docs/fleet.md and
 * fleet/push-protocol.ts). The terminal proves its device key at the upgrade with the same Pos-Proof
 * the HTTP API uses (GET, htu `${issuer}/v1/push`, empty-body hash): no valid proof, no upgrade (401).
 *
 * Delivery: every halt and resume notice is an outbox row in the store (seq per terminal). On connect
 * the hub sends every unacknowledged row in seq order; while connected, each `{type:'outbox'}` bus
 * message makes every process read that halt's rows once and send them to the terminals it holds.
 * The terminal acknowledges each seq; an unacknowledged row is sent again on the next connection.
 *
 * One device key on two live connections at once (in any process: the store holds one row per
 * terminal) is a fleet correlation: the second connection is closed (4409) and the terminal halted.
 */
import { randomUUID } from 'node:crypto';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { requireTerminalProof, type Ctx } from '../server/context';
import type { OutboxRow, TerminalRow } from '../store/types';
import type { BusMessage } from './bus';
import {
  CLOSE_DUPLICATE,
  CLOSE_GOING_AWAY,
  CLOSE_POLICY,
  PUSH_MAX_FRAME,
  PUSH_PATH,
  TerminalMessageSchema,
  parseFrame,
  type ServerMessage,
} from './push-protocol';

export interface PushOptions {
  /** Heartbeat: a ping every this many ms; a connection that missed one pong is closed (default 15 s). */
  readonly pingIntervalMs?: number;
  /** A push connection row not refreshed for this long is dead (default 2 pings + 5 s). */
  readonly liveWindowMs?: number;
  /** How long a local connection may take to answer the ping that checks it is still alive (default 2 s). */
  readonly probeTimeoutMs?: number;
}

interface Conn {
  readonly terminalId: string;
  readonly merchantId: string;
  readonly connectionId: string;
  readonly socket: WebSocket;
  /** Seqs already sent on this connection (a bus message and the connect-time resend may overlap). */
  readonly sent: Set<number>;
  alive: boolean;
  registered: boolean;
  closed: boolean;
  /** Sending the pending messages read at connect: live messages wait in the queue behind them. */
  flushing: boolean;
  /** Sends are serialized per connection, so a terminal receives its messages in the order read. */
  queue: Promise<void>;
}

export interface PushHub {
  /** Terminal ids connected to this process. */
  connected(): string[];
  close(): void;
}

const KIND = 'device-key-two-connections';

export async function registerPush(
  app: FastifyInstance,
  ctx: Ctx,
  options: PushOptions = {},
): Promise<PushHub> {
  const pingIntervalMs = options.pingIntervalMs ?? 15_000;
  const liveWindowMs = options.liveWindowMs ?? 2 * pingIntervalMs + 5_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const locals = new Map<string, Conn>();
  const proven = new WeakMap<FastifyRequest, TerminalRow>();
  const log = app.log;

  const enqueue = (conn: Conn, work: () => Promise<void>): void => {
    conn.queue = conn.queue.then(work).catch((error: unknown) => {
      log.warn({ err: error, terminal: conn.terminalId }, 'push: send failed');
    });
  };

  /**
   * The frame of one outbox row. A fan-out sends one halt's message to thousands of terminals with
   * only `seq` differing: the rest is serialised once per (kind, halt, reason, time) and reused.
   */
  let tail: { key: OutboxRow | undefined; text: string } = { key: undefined, text: '' };
  const frame = (row: OutboxRow): string => {
    const k = tail.key;
    if (
      k === undefined ||
      k.kind !== row.kind ||
      k.haltId !== row.haltId ||
      k.reason !== row.reason ||
      k.createdAt !== row.createdAt
    ) {
      const rest: Omit<ServerMessage, 'type' | 'seq'> = {
        haltId: row.haltId,
        reason: row.reason,
        at: row.createdAt,
      };
      tail = { key: row, text: JSON.stringify(rest).slice(1) };
    }
    // Same bytes as JSON.stringify({type, seq, haltId, reason, at}): kind is 'halt' or 'resume'.
    return `{"type":"${row.kind}","seq":${String(row.seq)},${tail.text}`;
  };

  /** Sends one message now unless already sent on this connection; true when sent. */
  const sendNow = (conn: Conn, row: OutboxRow): boolean => {
    if (conn.closed || row.ackedAt !== null || conn.sent.has(row.seq)) return false;
    conn.sent.add(row.seq);
    conn.socket.send(frame(row));
    return true;
  };

  /**
   * Records the first send of each row (after the sends, so the store never delays a delivery); the
   * calls of one turn of the event loop are one statement in the store.
   */
  const markSent = async (rows: readonly OutboxRow[]): Promise<void> => {
    const at = ctx.clock.now();
    await Promise.all(
      rows
        .filter((row) => row.sentAt === null)
        .map((row) => ctx.store.markOutboxSent(row.terminalId, row.seq, at)),
    );
  };

  const forget = async (conn: Conn): Promise<void> => {
    if (!conn.registered) return;
    conn.registered = false;
    if (locals.get(conn.terminalId) === conn) locals.delete(conn.terminalId);
    ctx.metrics.pushConnections.dec();
    await ctx.store.releasePushConnection(conn.terminalId, conn.connectionId);
    ctx.fleet.emit({
      type: 'connection',
      at: ctx.clock.now(),
      merchantId: conn.merchantId,
      terminalId: conn.terminalId,
      connected: false,
    });
  };

  /** True when the connection answers a ping within the probe timeout. */
  const probe = (conn: Conn): Promise<boolean> =>
    new Promise((resolve) => {
      if (conn.closed || conn.socket.readyState !== conn.socket.OPEN) {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => {
        conn.socket.off('pong', onPong);
        resolve(false);
      }, probeTimeoutMs);
      const onPong = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      conn.socket.once('pong', onPong);
      conn.socket.ping();
    });

  /** Registers the connection in the store; false when the device key already holds a live one. */
  const claim = async (conn: Conn): Promise<boolean> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = ctx.clock.now();
      const result = await ctx.store.claimPushConnection(
        {
          terminalId: conn.terminalId,
          connectionId: conn.connectionId,
          instanceId: ctx.instanceId,
          connectedAt: now,
          seenAt: now,
        },
        now - liveWindowMs,
      );
      if (result.ok) return true;
      const other = result.existing;
      // Another process holds a live connection of this device key.
      if (other.instanceId !== ctx.instanceId) return false;
      const local = locals.get(conn.terminalId);
      if (local === undefined || local.connectionId !== other.connectionId) {
        // A row this process no longer holds a socket for: dead.
        await ctx.store.releasePushConnection(other.terminalId, other.connectionId);
        continue;
      }
      // A reconnect after a silent network loss looks like this too: the old socket must prove alive.
      if (await probe(local)) return false;
      local.socket.terminate();
      await forget(local);
    }
    return false;
  };

  const correlate = async (conn: Conn): Promise<void> => {
    conn.socket.close(CLOSE_DUPLICATE, 'POS_ERR_PUSH_DUPLICATE');
    const at = ctx.clock.now();
    await ctx.audit('correlation', 'correlation.alert', conn.terminalId, {
      kind: KIND,
      connection: conn.connectionId,
      instance: ctx.instanceId,
    });
    ctx.fleet.emit({
      type: 'correlation',
      at,
      merchantId: conn.merchantId,
      terminalId: conn.terminalId,
      kind: KIND,
    });
    await ctx.fleet.halt({
      scope: 'terminal',
      target: conn.terminalId,
      reason: 'fleet correlation: device key on two push connections',
      actor: 'correlation',
      source: 'correlation',
      merchantId: conn.merchantId,
    });
  };

  const onFrame = async (conn: Conn, data: RawData, isBinary: boolean): Promise<void> => {
    const text = isBinary ? undefined : Buffer.isBuffer(data) ? data.toString('utf8') : undefined;
    const message = text === undefined ? undefined : parseFrame(TerminalMessageSchema, text);
    if (message === undefined) {
      conn.socket.close(CLOSE_POLICY, 'POS_ERR_PUSH_MESSAGE');
      return;
    }
    const now = ctx.clock.now();
    const row = await ctx.store.ackOutbox(conn.terminalId, message.seq, now);
    if (row === undefined) return; // already acknowledged, or no such message: nothing to do
    const latencyMs = Math.max(0, now - row.createdAt);
    ctx.metrics.haltDelivery.observe({ kind: row.kind }, latencyMs / 1000);
    ctx.fleet.emit({
      type: 'ack',
      at: now,
      merchantId: conn.merchantId,
      haltId: row.haltId,
      terminalId: conn.terminalId,
      seq: row.seq,
      latencyMs,
    });
  };

  const accept = async (socket: WebSocket, terminal: TerminalRow): Promise<void> => {
    const conn: Conn = {
      terminalId: terminal.id,
      merchantId: terminal.merchantId,
      connectionId: randomUUID(),
      socket,
      sent: new Set(),
      alive: true,
      registered: false,
      closed: false,
      flushing: true,
      queue: Promise.resolve(),
    };
    socket.on('message', (data, isBinary) => {
      onFrame(conn, data, isBinary).catch((error: unknown) => {
        log.warn({ err: error, terminal: conn.terminalId }, 'push: frame handling failed');
      });
    });
    socket.on('pong', () => {
      conn.alive = true;
      if (conn.registered)
        void ctx.store
          .touchPushConnection(conn.terminalId, conn.connectionId, ctx.clock.now())
          .catch(() => undefined);
    });
    socket.on('close', () => {
      conn.closed = true;
      void forget(conn).catch(() => undefined);
    });
    if (!(await claim(conn))) {
      if (!conn.closed) await correlate(conn);
      return;
    }
    conn.registered = true;
    ctx.metrics.pushConnections.inc();
    if (conn.closed) {
      await forget(conn);
      return;
    }
    locals.set(conn.terminalId, conn);
    ctx.fleet.emit({
      type: 'connection',
      at: ctx.clock.now(),
      merchantId: conn.merchantId,
      terminalId: conn.terminalId,
      connected: true,
    });
    // Registered first, then read: a message written meanwhile arrives through the bus (once: `sent`).
    enqueue(conn, async () => {
      try {
        const rows = await ctx.store.pendingOutbox(conn.terminalId);
        const sent = rows.filter((row) => sendNow(conn, row));
        conn.flushing = false;
        await markSent(sent);
      } finally {
        conn.flushing = false;
      }
    });
  };

  /** Sends committed outbox rows to the terminals this process holds. */
  const fanOut = async (rows: readonly OutboxRow[]): Promise<void> => {
    if (locals.size === 0) return;
    const sent: OutboxRow[] = [];
    for (const row of rows) {
      const conn = locals.get(row.terminalId);
      if (conn === undefined || row.ackedAt !== null) continue;
      if (conn.flushing)
        enqueue(conn, async () => {
          if (sendNow(conn, row)) await markSent([row]);
        });
      else if (sendNow(conn, row)) sent.push(row);
    }
    await markSent(sent);
  };
  const onBus = async (message: BusMessage): Promise<void> => {
    if (message.type !== 'outbox' || locals.size === 0) return;
    await fanOut(await ctx.store.listHaltDeliveries(message.haltId));
  };
  const unsubscribe = ctx.bus.subscribe((message) => {
    onBus(message).catch((error: unknown) => log.warn({ err: error }, 'push: fan-out failed'));
  });
  // Rows written by this process: sent from what the store returned (committed), no read back.
  const unsubscribeLocal = ctx.fleet.onOutboxRows((rows) => {
    fanOut(rows).catch((error: unknown) => log.warn({ err: error }, 'push: fan-out failed'));
  });
  /** Every pending message of one connection, in seq order (those already sent on it are skipped). */
  const resendPending = (conn: Conn): void => {
    enqueue(conn, async () => {
      const rows = await ctx.store.pendingOutbox(conn.terminalId);
      await markSent(rows.filter((row) => sendNow(conn, row)));
    });
  };
  // The bus lost messages while its connection was down: each terminal held here gets what is pending.
  const unsubscribeReconnect =
    ctx.bus.onReconnect?.(() => {
      for (const conn of locals.values()) resendPending(conn);
    }) ?? ((): void => undefined);

  const heartbeat = setInterval(() => {
    for (const conn of locals.values()) {
      if (!conn.alive) {
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.socket.ping();
      } catch {
        conn.socket.terminate();
      }
    }
  }, pingIntervalMs);
  heartbeat.unref();

  const hub: PushHub = {
    connected: () => [...locals.keys()],
    close() {
      clearInterval(heartbeat);
      unsubscribe();
      unsubscribeLocal();
      unsubscribeReconnect();
      for (const conn of locals.values()) conn.socket.close(CLOSE_GOING_AWAY, 'shutting down');
    },
  };

  await app.register(websocket, {
    options: { maxPayload: PUSH_MAX_FRAME },
    // Going away (1001) before Fastify closes the server; each socket's close handler releases its row.
    preClose(done) {
      hub.close();
      const server = app.websocketServer;
      for (const client of server.clients) client.close(CLOSE_GOING_AWAY, 'shutting down');
      server.close(() => done());
    },
  });
  app.get(
    PUSH_PATH,
    {
      websocket: true,
      schema: {
        tags: ['terminal', 'fleet'],
        summary: 'Push connection (WebSocket): halts and resume notices, acknowledged by seq',
        security: [{ posProof: [] }],
      },
      preValidation: async (request) => {
        proven.set(request, await requireTerminalProof(ctx, request));
      },
    },
    (socket, request) => {
      const terminal = proven.get(request);
      if (terminal === undefined) {
        socket.close(CLOSE_POLICY, 'POS_ERR_PROOF_MISSING');
        return;
      }
      accept(socket, terminal).catch((error: unknown) => {
        log.warn({ err: error, terminal: terminal.id }, 'push: connection setup failed');
        socket.terminate();
      });
    },
  );
  return hub;
}
