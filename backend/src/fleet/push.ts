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
import type { OutboxRow, PushConnectionRow, TerminalRow } from '../store/types';
import type { BusMessage } from './bus';
import {
  CLOSE_DECOMMISSIONED,
  CLOSE_DUPLICATE,
  CLOSE_GOING_AWAY,
  CLOSE_POLICY,
  CLOSE_TRY_AGAIN,
  PUSH_MAX_FRAME,
  PUSH_PATH,
  TerminalMessageSchema,
  isDecommissionNotice,
  parseFrame,
  type ServerMessage,
} from './push-protocol';

export interface PushOptions {
  /** Heartbeat: a ping every this many ms; a connection that missed one pong is closed (default 15 s). */
  readonly pingIntervalMs?: number;
  /** A push connection row not refreshed for this long is dead (default 2 pings + 5 s). */
  readonly liveWindowMs?: number;
  /** How long a connection may take to answer the ping that checks it is still alive (default 2 s). */
  readonly probeTimeoutMs?: number;
  /**
   * How long to wait for another process's answer to a probe of the connection it holds (default the
   * probe timeout + 3 s); no answer: the row is waited out (it goes stale unless the socket pongs).
   */
  readonly probeAnswerMs?: number;
  /**
   * Frames a terminal may send: a token bucket per connection (default 32 at once, 10 per second),
   * plus one token per message sent to it (each deserves an ack). Beyond it: closed 1008.
   */
  readonly frameRate?: { readonly burst?: number; readonly perSecond?: number };
}

interface Conn {
  readonly terminalId: string;
  readonly merchantId: string;
  readonly connectionId: string;
  readonly socket: WebSocket;
  /** Seqs already sent on this connection (a bus message and the connect-time resend may overlap). */
  readonly sent: Set<number>;
  /** Seqs sent on this connection and not yet acknowledged on it: only these acks reach the store. */
  readonly unacked: Set<number>;
  /** A resume's seq → the seqs of the halts it lifted that were not sent (acknowledged with it). */
  readonly supersededBy: Map<number, number[]>;
  /**
   * Every unacknowledged message of the terminal with a seq up to this one has been sent on this
   * connection: the next message to send is `high + 1`; a higher seq means one in between may not
   * have reached this process yet, and the terminal's pending messages are read again (seq order).
   */
  high: number;
  alive: boolean;
  registered: boolean;
  closed: boolean;
  /** A read of the pending messages is queued: live messages wait in the queue behind it. */
  busy: boolean;
  /** Sends are serialized per connection, so a terminal receives its messages in seq order. */
  queue: Promise<void>;
  /** Frames from the terminal are handled one at a time, in order. */
  frames: Promise<void>;
  /** Frame rate limit (token bucket). */
  tokens: number;
  refilledAt: number;
}

type ClaimResult = 'ok' | 'duplicate' | 'unsettled' | 'gone';

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
  const probeAnswerMs = options.probeAnswerMs ?? probeTimeoutMs + 3_000;
  const burst = options.frameRate?.burst ?? 32;
  const perSecond = options.frameRate?.perSecond ?? 10;
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
    conn.unacked.add(row.seq);
    conn.tokens += 1; // one acknowledgement is owed for it
    conn.socket.send(frame(row));
    // A decommission notice is the last message: the terminal closes its PIN pad on it (a `halt`),
    // then the connection is closed (after the frame, in order) and its device key is refused from now on.
    if (row.kind === 'halt' && isDecommissionNotice(row.haltId))
      conn.socket.close(CLOSE_DECOMMISSIONED, 'POS_ERR_TERMINAL_DECOMMISSIONED');
    return true;
  };

  /** Reads the terminal's pending messages and sends those not sent yet, in seq order (queued). */
  const resync = (conn: Conn, atLeast: number): void => {
    conn.busy = true;
    enqueue(conn, async () => {
      try {
        const rows = await ctx.store.pendingOutbox(conn.terminalId);
        // A halt lifted before it was delivered is superseded by the resume pending behind it: sending
        // it first would stop a sale that the resume allows a moment later. It is not sent; the
        // terminal's acknowledgement of that resume acknowledges it too (see onFrame).
        const superseded = new Set<number>();
        for (const row of rows) {
          if (row.kind !== 'halt') continue;
          const resume = rows.find((r) => r.kind === 'resume' && r.haltId === row.haltId && r.seq > row.seq);
          if (resume === undefined) continue;
          superseded.add(row.seq);
          conn.supersededBy.set(resume.seq, [...(conn.supersededBy.get(resume.seq) ?? []), row.seq]);
        }
        const sent = rows.filter((row) => !superseded.has(row.seq) && sendNow(conn, row));
        // A seq below a committed one is committed too: what was not read was acknowledged.
        for (const row of rows) conn.high = Math.max(conn.high, row.seq);
        conn.high = Math.max(conn.high, atLeast);
        conn.busy = false;
        await markSent(sent);
      } finally {
        conn.busy = false;
      }
    });
  };

  /**
   * One committed outbox row for a connection, sent in seq order: at once when it is the next one,
   * behind a re-read of the pending messages when one before it may be missing (fan-outs of two
   * halts race; a bus message can arrive after a later one), skipped when already covered.
   */
  const offer = (conn: Conn, row: OutboxRow, out: OutboxRow[]): void => {
    if (conn.closed || row.ackedAt !== null) return;
    if (conn.busy) {
      enqueue(conn, async () => {
        const later: OutboxRow[] = [];
        offer(conn, row, later);
        await markSent(later);
      });
      return;
    }
    if (row.seq <= conn.high) return; // sent on this connection already, or acknowledged
    if (row.seq === conn.high + 1) {
      conn.high = row.seq;
      if (sendNow(conn, row)) out.push(row);
      return;
    }
    resync(conn, row.seq);
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

  /** Probes over the bus sent by this process, by request id: resolved with the owner's answer. */
  const waiting = new Map<string, (alive: boolean) => void>();

  /** Asks the process holding `row` whether its socket answers a ping; undefined: no answer in time. */
  const askOwner = (row: PushConnectionRow): Promise<boolean | undefined> =>
    new Promise((resolve) => {
      const requestId = randomUUID();
      const timer = setTimeout(() => {
        waiting.delete(requestId);
        resolve(undefined);
      }, probeAnswerMs);
      timer.unref();
      waiting.set(requestId, (alive) => {
        clearTimeout(timer);
        waiting.delete(requestId);
        resolve(alive);
      });
      ctx.bus
        .publish(
          {
            type: 'probe',
            requestId,
            terminalId: row.terminalId,
            connectionId: row.connectionId,
            instanceId: row.instanceId,
            from: ctx.instanceId,
          },
          { remoteOnly: true },
        )
        .catch(() => undefined); // unanswered: the row is waited out
    });

  /** Another process asks whether the connection this process holds is alive: ping it, answer. */
  const answerProbe = async (message: Extract<BusMessage, { type: 'probe' }>): Promise<void> => {
    const local = locals.get(message.terminalId);
    let alive = false;
    if (local !== undefined && local.connectionId === message.connectionId) {
      alive = await probe(local);
      if (!alive) {
        local.socket.terminate();
        await forget(local);
      }
    } else {
      // A row this process holds no socket for: dead.
      await ctx.store.releasePushConnection(message.terminalId, message.connectionId);
    }
    await ctx.bus.publish(
      { type: 'probe-result', requestId: message.requestId, instanceId: message.from, alive },
      { remoteOnly: true },
    );
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(ms, liveWindowMs))).unref());

  /**
   * Registers the connection in the store. `duplicate`: the device key holds another connection that
   * is proven alive (it answered a ping, here or in the process holding it); `unsettled`: the claim
   * did not settle (the new connection is asked to come back later, nobody is halted).
   */
  const claim = async (conn: Conn): Promise<ClaimResult> => {
    let unanswered: PushConnectionRow | undefined;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (conn.closed) return 'gone';
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
      if (result.ok) return 'ok';
      const other = result.existing;
      if (other.instanceId !== ctx.instanceId) {
        // A reconnect to another process after a silent network loss looks like this: the process
        // holding the old connection pings it; only a live old connection means two holders.
        if (
          unanswered !== undefined &&
          unanswered.connectionId === other.connectionId &&
          other.seenAt > unanswered.seenAt
        )
          return 'duplicate'; // refreshed by a pong since: alive
        const alive = await askOwner(other);
        if (alive === true) return 'duplicate';
        if (alive === false) {
          // The owner dropped it; released here too in case its write was lost (compare-and-set by id).
          await ctx.store.releasePushConnection(other.terminalId, other.connectionId);
          continue;
        }
        // No answer (that process is gone or its bus is down): wait until the row would be stale.
        unanswered = other;
        await sleep(other.seenAt + liveWindowMs - ctx.clock.now() + 1);
        continue;
      }
      const local = locals.get(conn.terminalId);
      if (local === undefined || local.connectionId !== other.connectionId) {
        // A row this process no longer holds a socket for: dead.
        await ctx.store.releasePushConnection(other.terminalId, other.connectionId);
        continue;
      }
      // A reconnect after a silent network loss looks like this too: the old socket must prove alive.
      if (await probe(local)) return 'duplicate';
      local.socket.terminate();
      await forget(local);
    }
    return 'unsettled';
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

  /** Token bucket per connection (real time: a flood is measured in wall-clock seconds). */
  const takeToken = (conn: Conn): boolean => {
    const now = performance.now();
    const refill = ((now - conn.refilledAt) / 1000) * perSecond;
    conn.refilledAt = now;
    if (conn.tokens < burst) conn.tokens = Math.min(burst, conn.tokens + refill);
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  };

  const onFrame = async (conn: Conn, data: RawData, isBinary: boolean): Promise<void> => {
    // No state check here: the `message` listener drops a frame received once the connection is no
    // longer open. A frame received while it was open counts even when the socket is closing by now:
    // a terminal that acknowledges a halt and closes at once (the headless CLI ending its sale) sends
    // the ack and the close frame together, and both are read in one go (the ack was lost before).
    const text = isBinary ? undefined : Buffer.isBuffer(data) ? data.toString('utf8') : undefined;
    const message = text === undefined ? undefined : parseFrame(TerminalMessageSchema, text);
    if (message === undefined) {
      conn.socket.close(CLOSE_POLICY, 'POS_ERR_PUSH_MESSAGE');
      return;
    }
    // Only a message sent on this connection and not acknowledged on it yet costs a store write.
    if (!conn.unacked.delete(message.seq)) return;
    const now = ctx.clock.now();
    const superseded = conn.supersededBy.get(message.seq) ?? [];
    conn.supersededBy.delete(message.seq);
    for (const seq of [message.seq, ...superseded]) {
      const row = await ctx.store.ackOutbox(conn.terminalId, seq, now);
      if (row === undefined) continue; // already acknowledged, or no such message: nothing to do
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
    }
  };

  const accept = async (socket: WebSocket, terminal: TerminalRow): Promise<void> => {
    const conn: Conn = {
      terminalId: terminal.id,
      merchantId: terminal.merchantId,
      connectionId: randomUUID(),
      socket,
      sent: new Set(),
      unacked: new Set(),
      supersededBy: new Map(),
      high: 0,
      alive: true,
      registered: false,
      closed: false,
      busy: true,
      queue: Promise.resolve(),
      frames: Promise.resolve(),
      tokens: burst,
      refilledAt: performance.now(),
    };
    socket.on('message', (data, isBinary) => {
      if (conn.closed || socket.readyState !== socket.OPEN) return;
      if (!takeToken(conn)) {
        socket.close(CLOSE_POLICY, 'POS_ERR_RATE_LIMITED');
        return;
      }
      conn.frames = conn.frames
        .then(() => onFrame(conn, data, isBinary))
        .catch((error: unknown) => {
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
    const claimed = await claim(conn);
    if (claimed !== 'ok') {
      if (conn.closed) return;
      if (claimed === 'duplicate') await correlate(conn);
      else socket.close(CLOSE_TRY_AGAIN, 'POS_ERR_UNAVAILABLE');
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
    resync(conn, 0);
  };

  /** Sends committed outbox rows to the terminals this process holds. */
  const fanOut = async (rows: readonly OutboxRow[]): Promise<void> => {
    if (locals.size === 0) return;
    const sent: OutboxRow[] = [];
    for (const row of rows) {
      const conn = locals.get(row.terminalId);
      if (conn !== undefined) offer(conn, row, sent);
    }
    await markSent(sent);
  };
  const onBus = async (message: BusMessage): Promise<void> => {
    if (message.type === 'probe') {
      if (message.instanceId === ctx.instanceId) await answerProbe(message);
      return;
    }
    if (message.type === 'probe-result') {
      if (message.instanceId === ctx.instanceId) waiting.get(message.requestId)?.(message.alive);
      return;
    }
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
  // The bus lost messages while its connection was down: each terminal held here gets what is pending.
  const unsubscribeReconnect =
    ctx.bus.onReconnect?.(() => {
      for (const conn of locals.values()) resync(conn, 0);
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
