/**
 * The reader simulator as a developer runs it: the `pos-reader-sim` binary in its own process, its
 * ready line, its control API, a terminal on the pseudo-terminal it prints, a PIN transaction the host
 * side decrypts, JSON events without a PAN, and a graceful stop on SIGTERM.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { devAm } from '@pos/device-sim/dev/am';
import { DevTerminal } from '@pos/device-sim/dev/terminal';
import { SerialLine, socatAvailable } from '@pos/device-sim/transport/serial';
import {
  aesDukptWorkingKey,
  decodePinBlock,
  decryptCardData,
  DEV_BDK_HEX,
  findTestCard,
  hex,
  parsePan,
  pinDigitsToText,
  type AesKsn,
} from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'device-sim', 'bin', 'pos-reader-sim.js');
const HAVE_SOCAT = socatAvailable();
if (!HAVE_SOCAT) console.log('skipping the pos-reader-sim process test: /usr/bin/socat is not installed');

const ReadySchema = z.object({
  event: z.literal('ready'),
  transport: z.literal('serial'),
  path: z.string().regex(/^\/dev\/pts\/\d+$/),
  control: z.string().regex(/^http:\/\/127\.0\.0\.1:\d+$/),
  serial: z.string().regex(/^PRS-[0-9A-F]{10}$/),
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function startSim(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  next: () => Promise<string>;
} {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l);
    waiters.shift()?.(l);
  });
  let read = 0;
  const next = (): Promise<string> => {
    if (read < lines.length) return Promise.resolve(lines[read++] ?? '');
    return new Promise((resolve) => {
      waiters.push((l) => {
        read++;
        resolve(l);
      });
    });
  };
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, lines, next };
}

function hostPin(block: Uint8Array, ksn: AesKsn, pan: string): string {
  const key = aesDukptWorkingKey({ bdk: hex(DEV_BDK_HEX), ksn, usage: 'pin-encryption', keyType: 'aes128' });
  const p = parsePan(pan);
  if (!key.ok || !p.ok) throw new Error('host key');
  const pin = decodePinBlock({ format: 4, block, pan: p.pan, key: key.key });
  if (!pin.ok) throw new Error(pin.code);
  return pinDigitsToText(pin.pin);
}

describe.skipIf(!HAVE_SOCAT)('pos-reader-sim (the process a developer runs)', () => {
  it('prints the ready line, serves the control API and a PIN transaction, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-reader-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const am = devAm('cli-test-am');
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(am.jwks));
    const sim = startSim([
      '--state-dir',
      join(dir, 'state'),
      '--control',
      '127.0.0.1:0',
      '--trust-jwks',
      join(dir, 'jwks.json'),
    ]);
    const ready = ReadySchema.parse(JSON.parse(await sim.next()));

    const status = (await (await fetch(`${ready.control}/status`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({
      serial: ready.serial,
      tampered: false,
      transaction: 'idle',
      session: false,
    });
    const bad = await fetch(`${ready.control}/card`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"card":"visa-pin","action":"shake"}',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'POS_ERR_SIM_CONTROL_BODY' } });

    const opened = await SerialLine.open({ path: ready.path });
    if (!opened.ok) throw new Error(opened.code);
    const line = opened.line;
    cleanups.push(() => line.close());
    const caPem = readFileSync(join(dir, 'state', 'manufacturer-ca', 'ca.pem'), 'utf8');
    const caDer = new Uint8Array(Buffer.from(caPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
    const connected = await DevTerminal.connect({
      line,
      caCertificateDer: caDer,
      serial: ready.serial,
      signTicket: (c) => am.sign(c),
    });
    if (!connected.ok) throw new Error(`${connected.code}: ${connected.detail}`);
    const term = connected.terminal;
    const card = findTestCard('visa-pin');
    if (card === undefined) throw new Error('catalogue');

    expect((await term.request({ t: 'start', id: term.newId(), amount: 4200, currency: 'EUR' })).ok).toBe(
      true,
    );
    const insert = await fetch(`${ready.control}/card`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ card: card.name, action: 'insert' }),
    });
    expect(insert.status).toBe(200);
    const ev = await term.waitFor('card-inserted');
    const dataKey = aesDukptWorkingKey({
      bdk: hex(DEV_BDK_HEX),
      ksn: ev.card.ksn as AesKsn,
      usage: 'data-encryption',
      keyType: 'aes128',
    });
    if (!dataKey.ok) throw new Error(dataKey.code);
    expect(decryptCardData(dataKey.key, ev.card, ev.card.ksn)).toMatchObject({
      ok: true,
      card: { pan: card.pan },
    });
    expect((await term.request({ t: 'ticket', id: term.newId(), jws: await term.pinTicket(ev) })).ok).toBe(
      true,
    );
    const digits = new Uint8Array([1, 2, 3, 4]);
    const answer = await term.request({ t: 'pin', id: term.newId(), digits });
    if (!answer.ok || answer.message.t !== 'pin-block') throw new Error('no PIN block');
    expect(hostPin(answer.message.block, answer.message.ksn as AesKsn, card.pan)).toBe(card.pin);

    const busy = await fetch(`${ready.control}/card`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ card: 'amex-pin', action: 'insert' }),
    });
    expect(busy.status).toBe(409);

    term.close();
    const exited = new Promise<number | null>((resolve) => sim.child.once('exit', (code) => resolve(code)));
    sim.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const events = sim.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({ event: 'stopped' });
    expect(events.map((e) => e['event'])).toEqual(
      expect.arrayContaining(['card', 'card-read', 'ticket', 'pin-block', 'session']),
    );
    // Never a PAN, a PIN block or a key in what it prints.
    const out = sim.lines.join('\n');
    expect(out).not.toContain(card.pan);
    expect(out).not.toMatch(/[0-9A-F]{32}/);
  });

  it('in a terminal with --demo, the i key runs a whole PIN transaction and q quits', async (ctx) => {
    if (!existsSync('/usr/bin/script')) {
      console.log(
        'skipped the keyboard test: /usr/bin/script (util-linux) is not installed to give it a TTY',
      );
      ctx.skip();
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'pos-reader-tty-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cmd = [process.execPath, BIN, '--demo', '--state-dir', join(dir, 's')]
      .map((a) => `'${a}'`)
      .join(' ');
    // script(1) runs the simulator on a pseudo-terminal, so stdin is a TTY and keys work.
    const child = spawn('/usr/bin/script', ['-qfec', cmd, '/dev/null'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const seen: Record<string, unknown>[] = [];
    const waiters: { event: string; resolve: () => void }[] = [];
    createInterface({ input: child.stdout }).on('line', (raw) => {
      const l = raw.replace(/\r/g, '').trim();
      if (!l.startsWith('{')) return;
      const e = JSON.parse(l) as Record<string, unknown>;
      seen.push(e);
      for (const w of waiters.splice(0)) {
        if (w.event === e['event']) w.resolve();
        else waiters.push(w);
      }
    });
    const waitFor = (event: string): Promise<void> =>
      seen.some((e) => e['event'] === event)
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ event, resolve }));
    await waitFor('ready');
    child.stdin.write('i');
    await waitFor('card');
    expect(seen.find((e) => e['event'] === 'card')).toMatchObject({ action: 'inserted', card: 'visa-pin' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdin.write('q');
    await waitFor('stopped');
    expect(await exited).toBe(0);
  });

  it('init makes a state directory with certificates openssl reads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-reader-init-'));
    try {
      const r = spawnSync(process.execPath, [BIN, 'init', '--state-dir', join(dir, 's')], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      const init = z
        .object({
          event: z.literal('init'),
          created: z.literal(true),
          serial: z.string(),
          readerCertificate: z.string(),
          caCertificate: z.string(),
        })
        .parse(JSON.parse(r.stdout));
      const text = spawnSync('openssl', ['x509', '-noout', '-subject', '-in', init.readerCertificate], {
        encoding: 'utf8',
      });
      if (text.error !== undefined) {
        console.log('skipped the openssl check: openssl is not installed');
        return;
      }
      expect(text.stdout).toContain(init.serial);
      const verify = spawnSync('openssl', ['verify', '-CAfile', init.caCertificate, init.readerCertificate], {
        encoding: 'utf8',
      });
      expect(verify.status).toBe(0);

      // trust: a JWKS file replaces the trusted A&M keys; a URL off loopback is refused.
      const am = devAm('trust-test-am');
      writeFileSync(join(dir, 'jwks.json'), JSON.stringify(am.jwks));
      const trust = spawnSync(
        process.execPath,
        [BIN, 'trust', '--state-dir', join(dir, 's'), '--jwks', join(dir, 'jwks.json')],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      );
      expect(trust.status).toBe(0);
      expect(JSON.parse(trust.stdout)).toEqual({ event: 'trust', keys: ['trust-test-am'] });
      const remote = spawnSync(
        process.execPath,
        [BIN, 'trust', '--state-dir', join(dir, 's'), '--jwks', 'http://example.com/jwks.json'],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      );
      expect(remote.status).toBe(2);
      expect(remote.stderr).toContain('POS_ERR_SIM_CLI_ARGS');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('trust fetches a JWKS from a URL on loopback', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-reader-trust-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const am = devAm('url-test-am');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(am.jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const child = spawn(
      process.execPath,
      [
        BIN,
        'trust',
        '--state-dir',
        join(dir, 's'),
        '--jwks',
        `http://127.0.0.1:${port}/.well-known/jwks.json`,
      ],
      { cwd: ROOT },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ event: 'trust', keys: ['url-test-am'] });
  });

  it('lists the test cards and refuses bad arguments with a code', () => {
    const cards = spawnSync(process.execPath, [BIN, 'cards', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(cards.status).toBe(0);
    const rows = z
      .array(
        z.object({
          name: z.string(),
          scheme: z.string(),
          maskedPan: z.string(),
          pin: z.string(),
          exercises: z.string(),
        }),
      )
      .parse(JSON.parse(cards.stdout));
    expect(rows.map((r) => r.name)).toEqual(
      expect.arrayContaining(['visa-pin', 'mastercard-pin', 'visa-no-pin', 'visa-expired', 'visa-declined']),
    );
    for (const r of rows) expect(r.maskedPan).toMatch(/\*{4}/);

    for (const args of [['--transport', 'usb'], ['--control', '0.0.0.0:9999'], ['frobnicate']]) {
      const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr).toContain('POS_ERR_SIM_CLI_ARGS');
    }
  });
});
