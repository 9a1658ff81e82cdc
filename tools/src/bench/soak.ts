/**
 * `npm run bench -- soak [--minutes N] [--terminals N]`: N simulated terminals attesting and transacting
 * against one back-end process for N minutes (default 10 minutes, 20 terminals; fractional minutes
 * allowed, e.g. 0.2 for a quick check). The goal: no errors, and the back-end's memory and the
 * latency flat over the run. One result line:
 *
 *   {"bench":"soak","minutes":…,"terminals":…,"errors":…,"rss_start_mb":…,"rss_end_mb":…,
 *    "p99_first_minute_ms":…,"p99_last_minute_ms":…, …}
 *
 * Each terminal has its own device key and its own reader (a reader certificate from one development
 * manufacturer CA, which the back-end trusts with --reader-ca), is enrolled through the API, then
 * repeats a cycle, starting one every CYCLE_MS: a periodic attestation; a pre-PIN attestation whose
 * evidence carries its reader's signed status (echoing the challenge) and a reader nonce, for a
 * PIN-entry ticket; a transaction (`POST /v1/transactions`) under that ticket with a Pos-Proof bound to
 * it, the card data encrypted under the DUKPT data key and a format 4 PIN block under the DUKPT PIN key
 * of a fresh KSN (keys derived from the development BDK, as the acquirer host derives them), the card a
 * PIN card of the test catalogue and the right PIN. An error is any answer that is not a success: an
 * HTTP error, no ticket, a transaction not approved, a request that took over 30 s.
 *
 * Latency: each operation (an attestation, challenge included; a transaction) from its first byte out
 * to its answer; p99 over the operations that started in the first and in the last minute (or the first
 * and last half when the run is shorter than two minutes: `window_s` says which). Memory: the back-end
 * process's resident set (Linux /proc; null elsewhere) after the warm-up, at the end, and its maximum.
 *
 * The back-end is `pos-backend` (SQLite, --dev, no rate limit) with the acquirer's card-spread velocity
 * rule lifted (soak-backend.ts says why).
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  aesDukptWorkingKey,
  encodePinBlock,
  encodeReaderStatus,
  encryptCardData,
  hex,
  parseAesKsn,
  parseBase64url,
  parsePan,
  pinDigitsFromText,
  toBase64url,
  toHex,
  unwrap,
  wipe,
} from '@pos/shared';
import { DEV_BDK_HEX, DEV_BDK_ID_HEX, TEST_CARDS, type TestCard } from '@pos/shared/testcards';
import { createIdentity, CA_CERT_FILE, CA_DIR, type ReaderIdentity } from '@pos/device-sim/state/identity';
import { admin, APP_VERSION, CODE_HASH, percentile, round, startServer, type ServerHandle } from './attest';
import { numberOption, parseBenchOptions, type Benchmark } from './measure';

/** One cycle per terminal every 4 s: 15 transactions a minute, under the acquirer's per-terminal warning (20). */
export const CYCLE_MS = 4000;
const REQUEST_TIMEOUT_MS = 30_000;
const SIGNALS = [
  'debugger',
  'inspector',
  'devtools',
  'node-options',
  'run-as-node',
  'suspicious-env',
  'virtual-machine',
  'remote-session',
  'screen-capture-protection',
];

/** The soak's options (the runner's --seconds is allowed and unused). */
export const SoakOptionsSchema = z.strictObject({
  minutes: numberOption('minutes', 0.05, 24 * 60, false).optional(),
  terminals: numberOption('terminals', 1, 200, true).optional(),
  seconds: z.unknown().optional(),
});

export function parseSoakOptions(options: Readonly<Record<string, string | boolean>>): {
  minutes: number;
  terminals: number;
} {
  const parsed = parseBenchOptions('soak', '--minutes and --terminals', SoakOptionsSchema, options);
  return { minutes: parsed.minutes ?? 10, terminals: parsed.terminals ?? 20 };
}

/** The back-end's resident set size in MB (Linux); null where /proc is not there. */
function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? null : round(Number(m[1]) / 1024);
  } catch {
    return null;
  }
}

const b64json = (o: unknown): string => toBase64url(Buffer.from(JSON.stringify(o)));
const sha256b64 = (data: string): string => createHash('sha256').update(data).digest('base64url');

/** A JSON POST; resolves with the parsed answer, rejects on an HTTP error (status and code). */
async function post(
  url: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status >= 300) {
    const code = z.object({ error: z.object({ code: z.string() }) }).safeParse(json);
    throw new Error(`${path}: HTTP ${res.status} ${code.success ? code.data.error.code : ''}`);
  }
  return json;
}

/** The cards the soak pays with: online PIN, approved by the simulated issuer. */
function payingCards(): TestCard[] {
  const yymm = new Date().toISOString().slice(2, 7).replace('-', '');
  return TEST_CARDS.filter((c) => c.onlinePin && c.issuer.outcome === 'approve' && c.expiry > yymm);
}

class SoakTerminal {
  readonly #key: KeyObject;
  readonly #jwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  readonly #readerKey: KeyObject;
  #id = '';
  #counter = 0;
  #statusSeq = 0;
  #ksnCounter = 0;
  readonly #ksnPrefix: string;

  constructor(
    private readonly url: string,
    private readonly reader: ReaderIdentity,
    private readonly card: TestCard,
    index: number,
  ) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#key = pair.privateKey;
    const j = pair.publicKey.export({ format: 'jwk' });
    this.#jwk = { kty: 'EC', crv: 'P-256', x: String(j.x), y: String(j.y) };
    const pub = reader.publicKey;
    this.#readerKey = createPrivateKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        d: toBase64url(reader.privateKey),
        x: toBase64url(pub.subarray(1, 33)),
        y: toBase64url(pub.subarray(33, 65)),
      },
      format: 'jwk',
    });
    // KSN: BDK ID, a derivation ID of this terminal's reader, then the transaction counter.
    this.#ksnPrefix = `${DEV_BDK_ID_HEX}${(index + 1).toString(16).padStart(8, '0')}`.toUpperCase();
  }

  #jws(header: Record<string, unknown>, payload: unknown): string {
    const input = `${b64json(header)}.${b64json(payload)}`;
    const sig = sign('sha256', Buffer.from(input), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${toBase64url(sig)}`;
  }

  /** The reader's signed status, echoing the challenge (as a reader answers `get-status`). */
  #readerStatus(challenge: string): Record<string, unknown> {
    const c = parseBase64url(challenge);
    const report = encodeReaderStatus({
      v: 1,
      serial: this.reader.serial,
      fw: '1.0.0-soak',
      fwHash: new Uint8Array(32),
      tamper: false,
      ksnCounter: this.#ksnCounter,
      battery: 100,
      time: Math.floor(Date.now() / 1000),
      seq: ++this.#statusSeq,
      ...(c.ok && c.bytes.length >= 1 && c.bytes.length <= 64 ? { challenge: c.bytes } : {}),
    });
    const sig = sign('sha256', report, { key: this.#readerKey, dsaEncoding: 'ieee-p1363' });
    return {
      status: toBase64url(report),
      signature: toBase64url(sig),
      chain: [toBase64url(this.reader.certificateDer)],
    };
  }

  #evidence(challenge: string, purpose: string, extra: Record<string, unknown> = {}): string {
    this.#counter += 1;
    const now = Date.now();
    const header: Record<string, unknown> = { alg: 'ES256', typ: 'pos-evidence+jwt' };
    if (purpose === 'enrollment') header['jwk'] = this.#jwk;
    return this.#jws(header, {
      iss: purpose === 'enrollment' ? 'enrolling' : this.#id,
      iat: Math.floor(now / 1000),
      challenge,
      counter: this.#counter,
      purpose,
      app: { version: APP_VERSION, build: 'release', codeHash: CODE_HASH },
      shell: 'headless',
      measurements: SIGNALS.map((name) => ({ name, status: 'ok', method: 'bench' })),
      ...(purpose === 'enrollment' ? {} : { reader: this.#readerStatus(challenge) }),
      time: now,
      ...extra,
    });
  }

  #proof(path: string, body: string, ticket?: string): string {
    return this.#jws(
      { alg: 'ES256', typ: 'pos-proof+jwt', kid: this.#id },
      {
        htm: 'POST',
        htu: this.url + path,
        iat: Math.floor(Date.now() / 1000),
        jti: toBase64url(randomBytes(16)),
        bh: sha256b64(body),
        ...(ticket === undefined ? {} : { ath: sha256b64(ticket) }),
      },
    );
  }

  async enroll(code: string): Promise<void> {
    const { challenge } = z
      .object({ challenge: z.string() })
      .parse(await post(this.url, '/v1/challenges', '{}'));
    const r = await post(
      this.url,
      '/v1/enrollments',
      JSON.stringify({
        code,
        deviceJwk: this.#jwk,
        readerSerial: this.reader.serial,
        evidence: this.#evidence(challenge, 'enrollment'),
      }),
    );
    this.#id = z.object({ terminalId: z.string() }).parse(r).terminalId;
  }

  /** One attestation (challenge, evidence, Pos-Proof); resolves with its ticket. */
  async attest(purpose: 'periodic' | 'pre-pin'): Promise<string> {
    const { challenge } = z
      .object({ challenge: z.string() })
      .parse(await post(this.url, '/v1/challenges', JSON.stringify({ terminalId: this.#id })));
    const nonce = purpose === 'pre-pin' ? toBase64url(randomBytes(16)) : undefined;
    const body = JSON.stringify({
      evidence: this.#evidence(challenge, purpose, nonce === undefined ? {} : { nonce }),
      ...(nonce === undefined ? {} : { nonce }),
    });
    const out = await post(this.url, '/v1/attestations', body, {
      'pos-proof': this.#proof('/v1/attestations', body),
    });
    const ticket = z.object({ ticket: z.object({ jws: z.string() }).optional() }).parse(out).ticket;
    if (ticket === undefined)
      throw new Error(
        `${purpose} attestation: no ticket (${JSON.stringify(out['verdict'] ?? '').slice(0, 200)})`,
      );
    return ticket.jws;
  }

  /** One PIN transaction under a PIN-entry ticket: what a reader hands over, with the right PIN. */
  async transact(ticket: string): Promise<void> {
    const ksnBytes = hex(`${this.#ksnPrefix}${(++this.#ksnCounter).toString(16).padStart(8, '0')}`);
    const ksn = unwrap(parseAesKsn(ksnBytes)).ksn;
    const bdk = hex(DEV_BDK_HEX);
    const dataKey = unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'data-encryption', keyType: 'aes128' })).key;
    const pinKey = unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'pin-encryption', keyType: 'aes128' })).key;
    const cardData = encryptCardData(dataKey, { pan: this.card.pan, exp: this.card.expiry }, ksnBytes);
    const digits = unwrap(pinDigitsFromText(this.card.pin)).pin;
    const block = unwrap(
      encodePinBlock({ format: 4, pin: digits, pan: unwrap(parsePan(this.card.pan)).pan, key: pinKey }),
    ).block;
    wipe(dataKey, pinKey, digits, bdk);
    const body = JSON.stringify({
      amount: 100 + Math.floor(Math.random() * 9900),
      currency: 'EUR',
      ksn: toHex(ksnBytes),
      cardData: { iv: toBase64url(cardData.iv), ct: toBase64url(cardData.ct) },
      pinBlock: toHex(block),
    });
    const out = await post(this.url, '/v1/transactions', body, {
      authorization: `PosTicket ${ticket}`,
      'pos-proof': this.#proof('/v1/transactions', body, ticket),
    });
    if (out['approved'] !== true) throw new Error(`transaction not approved: ${String(out['code'])}`);
  }
}

interface Sample {
  /** When the operation started, ms since the epoch. */
  readonly at: number;
  readonly ms: number;
}

/** Makes one reader identity per terminal, all from one development manufacturer CA; returns the CA PEM path. */
async function makeReaders(dir: string, n: number): Promise<{ ca: string; readers: ReaderIdentity[] }> {
  const readers: ReaderIdentity[] = [];
  const first = join(dir, 'reader-0');
  for (let i = 0; i < n; i++) {
    const stateDir = join(dir, `reader-${i}`);
    if (i > 0) {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      cpSync(join(first, CA_DIR), join(stateDir, CA_DIR), { recursive: true });
    }
    const made = await createIdentity(stateDir);
    if (!made.ok) throw new Error(`reader identity: ${made.code}`);
    readers.push(made.identity);
  }
  return { ca: join(first, CA_DIR, CA_CERT_FILE), readers };
}

export const soakBench: Benchmark = {
  name: 'soak',
  usesSeconds: false,
  summary:
    'terminals attesting and transacting for --minutes against one back-end: errors, memory, p99 drift',
  check(options) {
    parseSoakOptions(options);
  },
  async run(ctx) {
    const { minutes, terminals } = parseSoakOptions(ctx.options);
    const cards = payingCards();
    if (cards.length === 0) throw new Error('the test-card catalogue has no PIN card the issuer approves');
    const dir = mkdtempSync(join(tmpdir(), 'pos-bench-soak-'));
    let server: ServerHandle | undefined;
    try {
      const { ca, readers } = await makeReaders(join(dir, 'readers'), terminals);
      const entry = fileURLToPath(new URL('./soak-backend.ts', import.meta.url));
      server = await startServer(join(dir, 'data'), {
        entry: ['--import', 'tsx', entry],
        args: ['--reader-ca', ca],
      });
      const { merchantId } = z
        .object({ merchantId: z.string() })
        .parse(await admin(server, '/v1/merchants', { name: 'soak' }));
      await admin(server, '/v1/reference-values', {
        version: APP_VERSION,
        build: 'release',
        codeHashes: [CODE_HASH],
        allowedShells: ['headless'],
      });
      process.stderr.write(`soak: enrolling ${terminals} terminals against ${server.url}\n`);
      const fleet: SoakTerminal[] = [];
      for (let i = 0; i < terminals; i++) {
        const { code } = z
          .object({ code: z.string() })
          .parse(await admin(server, `/v1/merchants/${merchantId}/enrollment-codes`, {}));
        const reader = readers[i];
        const card = cards[i % cards.length];
        if (reader === undefined || card === undefined) throw new Error('no reader or card');
        const t = new SoakTerminal(server.url, reader, card, i);
        await t.enroll(code);
        fleet.push(t);
      }

      const samples: Sample[] = [];
      let errors = 0;
      let firstError: string | undefined;
      let transactions = 0;
      let attestations = 0;
      const timed = async <T>(body: () => Promise<T>): Promise<T> => {
        const at = Date.now();
        const t0 = performance.now();
        const out = await body();
        samples.push({ at, ms: performance.now() - t0 });
        return out;
      };
      const cycle = async (t: SoakTerminal): Promise<void> => {
        await timed(() => t.attest('periodic'));
        attestations++;
        const ticket = await timed(() => t.attest('pre-pin'));
        attestations++;
        await timed(() => t.transact(ticket));
        transactions++;
      };

      // Warm-up: one cycle each (JIT, SQLite cache), not counted; a failure here stops the bench.
      await Promise.all(fleet.map((t) => cycle(t)));
      samples.length = 0;
      transactions = 0;
      attestations = 0;

      const pid = server.child.pid;
      const rssStart = rssMb(pid);
      let rssMax = rssStart ?? 0;
      const start = Date.now();
      const end = start + minutes * 60_000;
      process.stderr.write(
        `soak: ${terminals} terminals for ${minutes} min (one cycle each every ${CYCLE_MS} ms)\n`,
      );
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, rssMb(pid) ?? 0);
      }, 5000);
      const progress = setInterval(() => {
        const left = Math.max(0, Math.round((end - Date.now()) / 1000));
        process.stderr.write(
          `soak: ${transactions} transactions, ${attestations} attestations, ${errors} errors, rss ${rssMb(pid) ?? '?'} MB, ${left}s left\n`,
        );
      }, 60_000);
      try {
        await Promise.all(
          fleet.map(async (t, i) => {
            // Spread the terminals over the first cycle.
            let next = start + Math.floor((i * CYCLE_MS) / fleet.length);
            while (next < end) {
              const wait = next - Date.now();
              if (wait > 0) await new Promise((r) => setTimeout(r, wait));
              next += CYCLE_MS;
              try {
                await cycle(t);
              } catch (e) {
                errors++;
                firstError ??= (e instanceof Error ? e.message : String(e)).slice(0, 300);
              }
              // Behind by more than a cycle (an overloaded machine): start the next one now, skip none.
              if (next < Date.now() - CYCLE_MS) next = Date.now();
            }
          }),
        );
        // The run lasts its minutes (the last cycles may end early).
        const rest = end - Date.now();
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      } finally {
        clearInterval(sampler);
        clearInterval(progress);
      }
      const rssEnd = rssMb(pid);
      rssMax = Math.max(rssMax, rssEnd ?? 0);

      // Operations start before `end`: the last window is the planned run's last minute (or half).
      const windowMs = Math.min(60_000, (end - start) / 2);
      const p99 = (from: number, to: number): number =>
        round(
          percentile(
            samples
              .filter((s) => s.at >= from && s.at < to)
              .map((s) => s.ms)
              .sort((a, b) => a - b),
            99,
          ),
          2,
        );
      const all = samples.map((s) => s.ms).sort((a, b) => a - b);
      ctx.emit({
        minutes,
        terminals,
        errors,
        rss_start_mb: rssStart,
        rss_end_mb: rssEnd,
        p99_first_minute_ms: p99(start, start + windowMs),
        p99_last_minute_ms: p99(end - windowMs, end),
        window_s: round(windowMs / 1000),
        rss_max_mb: rssStart === null ? null : rssMax,
        p50_ms: round(percentile(all, 50), 2),
        transactions,
        attestations,
        cycle_ms: CYCLE_MS,
        ...(firstError === undefined ? {} : { first_error: firstError }),
      });
    } finally {
      if (server !== undefined) {
        const child = server.child;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
