/**
 * Test support for the browser shell: a fake core, raw HTTP requests (any Host, any header), and the
 * `snapshot` events of its event stream (also read by the full-stack tests in test/test/fullstack).
 */
import { request } from 'node:http';
import {
  parseCommand,
  UI_API_VERSION,
  type CommandResult,
  type Snapshot,
  type TerminalCore,
} from '../../src/api/contract';

export class FakeCore implements TerminalCore {
  readonly commands: unknown[] = [];
  readonly subs = new Set<(s: Snapshot) => void>();
  closed = false;
  seq = 0;
  state: Snapshot = {
    v: UI_API_VERSION,
    shell: 'browser',
    seq: 0,
    enrolled: true,
    terminalId: 'term_fake',
    reader: { state: 'connected', serial: 'SIM-1' },
    backend: { link: 'up', push: true },
    attestation: { tier: 'affirming', at: 1, reasons: [] },
    sale: { state: 'idle' },
  };

  handle(input: unknown): Promise<CommandResult> {
    const p = parseCommand(input);
    if (!p.ok) return Promise.resolve({ ok: false, code: p.code, detail: p.detail });
    this.commands.push(p.command);
    if (p.command.cmd === 'sale.start')
      this.emit({
        sale: {
          state: 'card',
          amountMinor: p.command.amountMinor,
          currency: p.command.currency,
          cardPrompt: 'insert-or-tap',
        },
      });
    if (p.command.cmd === 'sale.cancel')
      return Promise.resolve({ ok: false, code: 'POS_ERR_DESKTOP_TXN_STATE', detail: 'no sale to cancel' });
    return Promise.resolve({ ok: true });
  }

  emit(change: Partial<Snapshot>): void {
    this.state = { ...this.state, ...change, seq: ++this.seq };
    for (const cb of [...this.subs]) cb(this.state);
  }

  subscribe(cb: (s: Snapshot) => void): () => void {
    this.subs.add(cb);
    cb(this.state);
    return () => this.subs.delete(cb);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request with exactly these headers (Host included); resolves with the whole answer. */
export function raw(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { host: `127.0.0.1:${port}`, ...opts.headers },
        setHost: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The single-use bootstrap code of a shell URL (`#c=...`). */
export const codeOf = (url: string): string => new URL(url).hash.replace(/^#c=/, '');

/** `POST /api/session` with this origin, as the page does: the answer (the key on success). */
export function exchange(
  port: number,
  code: string,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  return raw(port, {
    method: 'POST',
    path: '/api/session',
    headers: { origin: `http://127.0.0.1:${port}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ code }),
  });
}

/** Exchanges a shell URL's bootstrap code for the launch secret (throws when refused). */
export async function keyFromUrl(port: number, url: string): Promise<string> {
  const r = await exchange(port, codeOf(url));
  if (r.status !== 200) throw new Error(`exchange refused: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { key: string }).key;
}

/**
 * Splits the UI API's event stream (`GET /api/events`, server-sent events), text as it arrives, into
 * the data of its `snapshot` events: `push` returns the data (JSON text) of each event the text
 * completes, in order; an event split across pushes comes out with the push that ends it.
 */
export function snapshotEventSplitter(): { push(text: string): string[] } {
  let buf = '';
  return {
    push: (text) => {
      const out: string[] = [];
      buf += text;
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (block.includes('event: snapshot')) out.push(data);
        i = buf.indexOf('\n\n');
      }
      return out;
    },
  };
}
