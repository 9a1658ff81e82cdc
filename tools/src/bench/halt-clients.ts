/**
 * One client process of the halt bench (tools/src/bench/halt.ts forks several): it holds its share of
 * the N terminals' push connections and records when each receives the halt. Spread over their own
 * processes (not the bench's event loop, which also sends the operator's request), the clients look
 * more like a fleet of separate devices, and a receive time waits only for its own process's turn.
 *
 * Receive times are absolute (`performance.timeOrigin + performance.now()`, ms since the epoch with
 * sub-ms resolution), so the parent compares them with its own request time on the same clock.
 *
 * IPC with the parent (every message parsed with zod): parent → `{type:'open', urls, issuer,
 * terminals:[{id, key (PKCS#8 PEM), server (index into urls)}]}`, `{type:'ack'}`, `{type:'report'}`;
 * child → `{type:'opened', opened, retried}`, `{type:'done'}` (every terminal here has the halt),
 * `{type:'received', at:[...]}` (null: not received).
 */
import { createHash, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import WebSocket from 'ws';
import { z } from 'zod';
import { ServerMessageSchema, parseFrame, PUSH_PATH } from '@pos/backend/fleet/push-protocol';

const OpenSchema = z.strictObject({
  type: z.literal('open'),
  urls: z.array(z.string().url()).min(1).max(16),
  issuer: z.string().url(),
  terminals: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(128),
        key: z.string().min(1).max(4096),
        server: z.number().int().nonnegative(),
      }),
    )
    .max(50_000),
});
const ParentMessageSchema = z.discriminatedUnion('type', [
  OpenSchema,
  z.strictObject({ type: z.literal('ack') }),
  z.strictObject({ type: z.literal('report') }),
]);

const b64json = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const EMPTY_HASH = createHash('sha256').update('').digest('base64url');

function proof(issuer: string, id: string, key: KeyObject): string {
  const input = `${b64json({ alg: 'ES256', typ: 'pos-proof+jwt', kid: id })}.${b64json({
    htm: 'GET',
    htu: `${issuer}${PUSH_PATH}`,
    iat: Math.floor(Date.now() / 1000),
    jti: randomBytes(16).toString('base64url'),
    bh: EMPTY_HASH,
  })}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const send = (message: unknown): void => {
  process.send?.(message);
};

let received: number[] = [];
const acks: (() => void)[] = [];

async function openAll(m: z.infer<typeof OpenSchema>): Promise<void> {
  const keys = m.terminals.map((t) => ({
    id: t.id,
    key: createPrivateKey(t.key),
    url: `${(m.urls[t.server] ?? m.urls[0] ?? '').replace(/^http/, 'ws')}${PUSH_PATH}`,
  }));
  let got = 0;
  received = new Array<number>(keys.length).fill(Number.NaN);
  let opened = 0;
  let retried = 0;
  const open = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const t = keys[i];
      if (t === undefined) return resolve();
      const ws = new WebSocket(t.url, { headers: { 'pos-proof': proof(m.issuer, t.id, t.key) } });
      let isOpen = false;
      ws.on('open', () => {
        isOpen = true;
        opened += 1;
        resolve();
      });
      ws.on('error', () => {
        if (isOpen) return;
        retried += 1;
        if (retried > keys.length) return resolve();
        setTimeout(() => void open(i).then(resolve), 50);
      });
      ws.on('message', (data, isBinary) => {
        const at = performance.timeOrigin + performance.now();
        const msg =
          isBinary || !Buffer.isBuffer(data)
            ? undefined
            : parseFrame(ServerMessageSchema, data.toString('utf8'));
        if (msg === undefined) return;
        if (msg.type === 'halt' && Number.isNaN(received[i])) {
          received[i] = at;
          got += 1;
          if (got === keys.length) send({ type: 'done' });
        }
        // Acknowledged after the measurement (on the parent's word): the acks' work is not the delivery's.
        acks.push(() => ws.send(JSON.stringify({ type: 'ack', seq: msg.seq })));
      });
    });
  // At most 100 handshakes in flight per client process (the listen backlog).
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(100, keys.length) }, async () => {
      while (next < keys.length) await open(next++);
    }),
  );
  send({ type: 'opened', opened, retried });
}

process.on('message', (raw: unknown) => {
  const parsed = ParentMessageSchema.safeParse(raw);
  if (!parsed.success) return;
  const m = parsed.data;
  if (m.type === 'open') void openAll(m);
  else if (m.type === 'ack') for (const ack of acks.splice(0)) ack();
  else send({ type: 'received', at: received.map((r) => (Number.isNaN(r) ? null : r)) });
});
// The parent's exit (or kill) ends this process: its sockets go with it.
process.on('disconnect', () => process.exit(0));
