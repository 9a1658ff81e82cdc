/**
 * Terminal side of the push connection (docs/fleet.md): connects to `GET /v1/push` with a fresh
 * Pos-Proof for every attempt, reconnects with exponential backoff and jitter, parses every frame
 * with the protocol schema, hands each message to `onMessage` once and in seq order (a message
 * resent after a reconnect, or one older than the newest handed on, is acknowledged but not handed
 * on: the newest seq is the terminal's state) and acknowledges it. Used by the tests,
 * the halt bench and, later, the terminal core.
 */
import WebSocket from 'ws';
import {
  CLOSE_DECOMMISSIONED,
  CLOSE_DUPLICATE,
  CLOSE_TRY_AGAIN,
  PUSH_MAX_FRAME,
  ServerMessageSchema,
  parseFrame,
  type ServerMessage,
} from './push-protocol';

export interface PushClientOptions {
  /** `ws://host:port/v1/push` (or wss://). */
  readonly url: string;
  /** A fresh Pos-Proof for `GET ${issuer}/v1/push` with an empty body (called for every attempt). */
  proof(): string | Promise<string>;
  /**
   * Each message once, and only when its seq is above every seq handed on before: a halt or resume
   * older than the newest one received is stale (it is still acknowledged).
   */
  onMessage?(message: ServerMessage): void;
  /** Connection changes: `open`; `closed` with the close code; `refused` with the HTTP status of a refused upgrade. */
  onState?(state: 'open' | 'closed' | 'refused', detail: { code?: number; status?: number }): void;
  /** Acknowledge each message as soon as it is handed on (default true). */
  readonly autoAck?: boolean;
  /** Backoff between attempts: first delay and cap, ms (default 200 and 10,000). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Reconnect after a close or a refusal (default true). */
  readonly reconnect?: boolean;
}

export interface PushClient {
  /** Acknowledges a message by seq (when autoAck is off). */
  ack(seq: number): void;
  /** Whether the connection is open now. */
  isOpen(): boolean;
  /** Stops reconnecting and closes the connection. */
  close(): Promise<void>;
}

export function startPushClient(options: PushClientOptions): PushClient {
  const autoAck = options.autoAck ?? true;
  const initialMs = options.backoff?.initialMs ?? 200;
  const maxMs = options.backoff?.maxMs ?? 10_000;
  /** Highest seq handed on; the caller's own acks (autoAck off), repeated when a copy comes again. */
  let highest = 0;
  const ackedByCaller = new Set<number>();
  let socket: WebSocket | undefined;
  let stopped = false;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (): void => {
    if (stopped || options.reconnect === false) return;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
    attempt += 1;
    timer = setTimeout(() => void connect(), base / 2 + Math.random() * (base / 2));
  };

  const send = (seq: number): void => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'ack', seq }));
  };

  const connect = async (): Promise<void> => {
    if (stopped) return;
    let proof: string;
    try {
      proof = await options.proof();
    } catch {
      schedule();
      return;
    }
    const ws = new WebSocket(options.url, { headers: { 'pos-proof': proof }, maxPayload: PUSH_MAX_FRAME });
    socket = ws;
    ws.on('unexpected-response', (_req, res) => {
      options.onState?.('refused', { status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      attempt = 0;
      options.onState?.('open', {});
    });
    ws.on('message', (data, isBinary) => {
      const text = isBinary || !Buffer.isBuffer(data) ? undefined : data.toString('utf8');
      const message = text === undefined ? undefined : parseFrame(ServerMessageSchema, text);
      if (message === undefined) return; // not a message of this protocol: ignored
      if (message.seq > highest) {
        highest = message.seq;
        options.onMessage?.(message);
      }
      if (autoAck || ackedByCaller.has(message.seq)) send(message.seq);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      if (socket === ws) socket = undefined;
      options.onState?.('closed', { code });
      // Decommissioned for good: the device key would be refused at every attempt.
      if (code === CLOSE_DECOMMISSIONED) stopped = true;
      if (code === CLOSE_DUPLICATE) attempt = Math.max(attempt, 5);
      else if (code === CLOSE_TRY_AGAIN) attempt = Math.max(attempt, 3);
      schedule();
    });
  };

  void connect();
  return {
    ack: (seq) => {
      ackedByCaller.add(seq);
      send(seq);
    },
    isOpen: () => socket?.readyState === WebSocket.OPEN,
    close: () =>
      new Promise<void>((resolve) => {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
        const ws = socket;
        if (ws === undefined || ws.readyState === WebSocket.CLOSED) {
          resolve();
          return;
        }
        ws.once('close', () => resolve());
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000, 'bye');
      }),
  };
}
