/**
 * No secret in any output (issue 9, point 4). The whole system as `npm start -- --headless` runs it
 * (scripts/start.mjs: back-end, reader simulator, socat; system.ts), at the most verbose log level each
 * process has: the back-end reads POS_LOG_LEVEL (pino; `trace` here); the reader simulator and the
 * `pos-terminal` CLI have no levels (they log all they log: the simulator its events in
 * DIR/logs/reader.log, the CLI its result line and messages). npm start hands each long-running child's
 * stdout and stderr to DIR/logs/<name>.log and writes its own on its stdout/stderr; its one-shot set-up
 * children (reader init, measure, operator account, enrollment) are heard only when they fail, so the
 * terminal side of an enrollment is exercised here with a second `pos-terminal enroll`.
 *
 * The scenario: an enrollment, the terminal's status (its last attestation), an approved sale with the
 * PIN typed on stdin, a sale declined for a wrong PIN given with --pin, an operator halt while the sale
 * waits for the PIN, the resume and an approved sale after it, the reader unplugged while the PIN pad is
 * open and a sale once it is back, and bad requests to the back-end (secrets in their bodies and
 * headers, a wrong admin token, a spent enrollment code, a wrong and a right dashboard login, a session
 * used and ended) and to the simulator's control API.
 *
 * Captured: npm start's stdout (its first line, the ready line, is where the operator password is
 * handed over: that line is checked for everything but the password) and stderr; every file under
 * DIR/logs and any crash report or dump in DIR; each `pos-terminal` run's stdout and stderr; the body of
 * every error answer the client saw. Then test/src/secrets-scan.ts looks for: the test cards' PANs (12
 * digits of one in a row, or a mask showing more than the first 6 and last 4), the PINs used (next to
 * "pin", as a clear PIN field, as a format 4 PIN block that opens under one of the reader's PIN keys),
 * the development BDK, the reader's IPEK and DUKPT registers, its identity, CA and card-token keys, both
 * terminals' device keys, the back-end's master key, its subkeys and its ticket-signing private key
 * (JWK d), any JWS/JWT, the admin token, the enrollment codes, the operator password, the dashboard
 * session cookie and CSRF token. A failure lists where and a redacted excerpt, never the secret. A
 * self-check first plants each kind in a synthetic log line: the scanner must flag it, or the test fails.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  aesDukptInitialKey,
  aesDukptWorkingKey,
  encodePinBlock,
  hex,
  parseAesKsn,
  parseBase64url,
  parsePan,
  pinDigitsFromText,
  toHex,
  unwrap,
} from '@pos/shared';
import { DEV_BDK_HEX, TEST_CARDS } from '@pos/shared/testcards';
import { deriveSubkey, open as openSealed } from '@pos/backend/keys/keyring';
import { openSqliteStore } from '@pos/backend/store/sqlite';
import {
  binaryForms,
  formatFindings,
  scanSources,
  type Finding,
  type LiteralSecret,
  type SecretSet,
  type Source,
} from '../../src/secrets-scan';
import {
  admin,
  fullStackMachine,
  readerEvents,
  runTerminal,
  simulator,
  startSystem,
  stopSystem,
  terminalId,
  waitFor,
  type System,
  type TerminalRun,
} from './system';

const PIN = '1234';
/** A wrong PIN for visa-pin: digits that appear nowhere else in the run. */
const WRONG_PIN = '5790';
const FAKE_READER_SERIAL = 'PRS-5EC2E75CA9';

const { skipReason, prefix } = fullStackMachine();
if (skipReason !== undefined) console.log(`skipping the full-stack secrets test: ${skipReason}`);

let sys: System | undefined;
const get = (): System => {
  if (sys === undefined) throw new Error('the system did not start');
  return sys;
};

/** Everything captured, by source name. */
const captured = new Map<string, string>([
  ['npm start stdout', ''],
  ['npm start stderr', ''],
]);
const append = (name: string, text: string): void => {
  captured.set(name, (captured.get(name) ?? '') + text);
};
/** Secrets the client made or was given during the run (enrollment codes, session cookie, CSRF token). */
const seen: LiteralSecret[] = [];
const runs: TerminalRun[] = [];
let runCount = 0;

/** `pos-terminal` with its stdout and stderr captured. */
function terminal(args: string[], label: string): TerminalRun {
  const name = `pos-terminal #${++runCount} ${label}`;
  const run = runTerminal(prefix, args);
  run.child.stdout?.on('data', (b: Buffer) => append(`${name} stdout`, b.toString('utf8')));
  run.child.stderr?.on('data', (b: Buffer) => append(`${name} stderr`, b.toString('utf8')));
  runs.push(run);
  return run;
}
const transact = (s: System, args: string[], label: string): TerminalRun =>
  terminal(['transact', '--data-dir', join(s.dir, 'terminal'), '--card', 'visa-pin', ...args], label);

/** A request whose answer, when it is an error, is captured (status and body). */
async function request(
  url: string,
  init: RequestInit,
  label: string,
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (res.status >= 400) append(`HTTP ${label} -> ${res.status}`, text);
  return { status: res.status, text, headers: res.headers };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** A fresh P-256 public JWK (a well-formed device key for a request that must fail further on). */
function deviceJwk(): Record<string, string> {
  const j = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return { kty: 'EC', crv: 'P-256', x: String(j.x), y: String(j.y) };
}

describe.skipIf(skipReason !== undefined)('no PIN, PAN, key or ticket in any output (npm start)', () => {
  beforeAll(async () => {
    sys = await startSystem(undefined, {
      env: { POS_LOG_LEVEL: 'trace' },
      onOutput: (stream, text) => append(`npm start ${stream}`, text),
    });
  }, 90_000);
  afterAll(async () => {
    await stopSystem(sys, runs, { clearFault: true });
  });

  it('an enrollment, the status, sales approved and declined, a halt during the PIN, a resume, the reader unplugged', async () => {
    const s = get();

    // Enrollment: a second terminal, paired with a reader serial no other terminal has.
    const m = await admin(s, 'POST', '/v1/merchants', { name: 'Secrets shop' });
    const merchantId = z.object({ merchantId: z.string() }).parse(m.json).merchantId;
    const c = await admin(s, 'POST', `/v1/merchants/${merchantId}/enrollment-codes`, {});
    const code = z.object({ code: z.string() }).parse(c.json).code;
    seen.push({ kind: 'token', label: 'enrollment code', value: code });
    const enrolled = await terminal(
      [
        'enroll',
        '--data-dir',
        join(s.dir, 'terminal-2'),
        '--backend',
        s.ready.backend,
        '--code',
        code,
        '--reader-serial',
        FAKE_READER_SERIAL,
        '--reader-ca',
        join(s.dir, 'reader', 'manufacturer-ca', 'ca.pem'),
        '--reader-path',
        join(s.dir, 'terminal.pty'),
      ],
      'enroll',
    ).result;
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(String(enrolled.line['terminalId'])).toMatch(/^trm_/);

    // The terminal's status: its last attestation verdict.
    const status = await terminal(['status', '--json', '--data-dir', join(s.dir, 'terminal')], 'status')
      .result;
    expect(status.code).toBe(0);
    expect(status.line).toMatchObject({ enrolled: true });

    // Approved: the PIN typed on stdin, as a person would.
    const typed = transact(s, ['--amount', '12.34'], 'sale, PIN on stdin');
    await typed.stderrHas('enter the PIN');
    typed.child.stdin?.write(`${PIN}\n`);
    expect((await typed.result).line).toEqual({ status: 'approved', code: null });

    // Declined: a wrong PIN given with --pin.
    const wrong = await transact(s, ['--amount', '5.00', '--pin', WRONG_PIN], 'sale, wrong PIN').result;
    expect(wrong.line['status']).toBe('declined');

    // An operator halt while the sale waits for the PIN.
    const halted = transact(s, ['--amount', '20.00'], 'sale, halted at the PIN');
    await halted.stderrHas('enter the PIN');
    const halt = await admin(s, 'POST', `/v1/terminals/${terminalId(s)}/halt`, { reason: 'incident 7' });
    expect(halt.status).toBeLessThan(300);
    expect((await halted.result).line).toMatchObject({ status: 'halted' });

    // The resume, and a sale after it.
    const resumed = await admin(s, 'POST', `/v1/terminals/${terminalId(s)}/resume`, { reason: 'checked' });
    expect(resumed.status).toBe(200);
    const after = await transact(s, ['--amount', '7.00', '--pin', PIN], 'sale after the resume').result;
    expect(after.line).toEqual({ status: 'approved', code: null });

    // The reader unplugged while the PIN pad is open; a sale once it is back.
    const unplugged = transact(s, ['--amount', '9.00'], 'sale, reader unplugged');
    await unplugged.stderrHas('enter the PIN');
    const fault = await simulator(s, 'POST', '/fault', { fault: 'disconnect', ms: 3000 });
    expect(fault.status).toBe(200);
    expect((await unplugged.result).line).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_READER' });
    const back = await transact(s, ['--amount', '10.00', '--pin', PIN], 'sale, reader back').result;
    expect(back.line).toEqual({ status: 'approved', code: null });
    expect(readerEvents(s).filter((e) => e['event'] === 'pin-block').length).toBeGreaterThanOrEqual(4);
  }, 180_000);

  it('bad requests to the back-end and the simulator, carrying secrets, and a dashboard session', async () => {
    const s = get();
    const b = s.ready.backend;
    const pan = TEST_CARDS[0]?.pan ?? '4111111111111111';
    const fakeJwt = `eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ0cm1feCIsInBpbiI6IjEyMzQifQ.c2ln`;
    const adminToken = readFileSync(join(s.dir, 'backend', 'admin-token'), 'utf8').trim();
    const bad = [
      await request(
        `${b}/v1/transactions`,
        {
          method: 'POST',
          headers: { ...JSON_HEADERS, authorization: `PosTicket ${fakeJwt}` },
          body: JSON.stringify({
            amount: 100,
            currency: 'EUR',
            pan,
            pin: PIN,
            pinBlock: `41${PIN}AAAAAAAAAA`,
          }),
        },
        'POST /v1/transactions (a made-up ticket, PAN and PIN in the body)',
      ),
      await request(
        `${b}/v1/transactions`,
        { method: 'POST', headers: JSON_HEADERS, body: `{"amount":1,"pan":"${pan}"` },
        'POST /v1/transactions (malformed JSON with a PAN)',
      ),
      await request(
        `${b}/v1/attestations`,
        {
          method: 'POST',
          headers: { ...JSON_HEADERS, 'pos-proof': fakeJwt },
          body: JSON.stringify({ evidence: fakeJwt }),
        },
        'POST /v1/attestations (made-up evidence and proof)',
      ),
      await request(
        `${b}/v1/terminals`,
        { headers: { authorization: `Bearer ${adminToken.slice(0, -4)}AAAA` } },
        'GET /v1/terminals (a wrong admin token)',
      ),
      await request(
        `${b}/v1/enrollments`,
        {
          method: 'POST',
          headers: JSON_HEADERS,
          body: JSON.stringify({
            code: seen[0]?.value ?? 'x',
            deviceJwk: deviceJwk(),
            readerSerial: 'PRS-0123456789',
            evidence: fakeJwt,
          }),
        },
        'POST /v1/enrollments (a spent code)',
      ),
      await request(
        `${b}/v1/auth/login`,
        {
          method: 'POST',
          headers: JSON_HEADERS,
          body: JSON.stringify({ username: 'operator', password: `${s.ready.dashboard.password}x` }),
        },
        'POST /v1/auth/login (a wrong password)',
      ),
      await request(
        `${s.ready.simulator.control}/card`,
        { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ card: pan, action: 'insert' }) },
        'simulator POST /card (a PAN for a card name)',
      ),
    ];
    for (const r of bad) expect(r.status).toBeGreaterThanOrEqual(400);

    // A dashboard session: login, a request under it, logout; then the ended session is refused.
    const login = await request(
      `${b}/v1/auth/login`,
      {
        method: 'POST',
        headers: JSON_HEADERS,
        body: JSON.stringify({ username: 'operator', password: s.ready.dashboard.password }),
      },
      'POST /v1/auth/login',
    );
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const sessionToken = cookie.slice(cookie.indexOf('=') + 1);
    expect(sessionToken.length).toBeGreaterThan(20);
    const csrf = z.object({ csrfToken: z.string() }).parse(JSON.parse(login.text)).csrfToken;
    seen.push(
      { kind: 'cookie', label: 'dashboard session cookie', value: sessionToken },
      { kind: 'token', label: 'dashboard CSRF token', value: csrf },
    );
    const me = await request(`${b}/v1/auth/me`, { headers: { cookie } }, 'GET /v1/auth/me');
    expect(me.status).toBe(200);
    const out = await request(
      `${b}/v1/auth/logout`,
      { method: 'POST', headers: { ...JSON_HEADERS, cookie, 'x-csrf-token': csrf }, body: '{}' },
      'POST /v1/auth/logout',
    );
    expect(out.status).toBeLessThan(300);
    const ended = await request(
      `${b}/v1/auth/me`,
      { headers: { cookie } },
      'GET /v1/auth/me (ended session)',
    );
    expect(ended.status).toBe(401);
  }, 60_000);

  it('no secret in anything captured (and the scanner flags each kind when one is planted)', async () => {
    const s = get();
    expect(await s.stop()).toBe(0);
    await waitFor(
      () => runs.every((r) => r.child.exitCode !== null || r.child.signalCode !== null),
      'the CLI runs',
    );

    const secrets = await collectSecrets(s);
    selfCheck(secrets);

    // The sources: npm start (the ready line apart), DIR/logs, crash reports and dumps, the CLI runs,
    // the error answers.
    const sources: Source[] = [];
    const startOut = captured.get('npm start stdout') ?? '';
    const readyLine = startOut.split('\n')[0] ?? '';
    expect(JSON.parse(readyLine)).toMatchObject({ event: 'ready' });
    sources.push({ name: 'npm start stdout (after the ready line)', text: startOut.slice(readyLine.length) });
    for (const [name, text] of captured) if (name !== 'npm start stdout') sources.push({ name, text });
    for (const file of outputFiles(s.dir))
      sources.push({ name: relative(s.dir, file), text: readFileSync(file, 'utf8') });
    // What was captured is what the run said (a capture that lost a stream would find nothing).
    const names = sources.map((x) => x.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'npm start stderr',
        join('logs', 'backend.log'),
        join('logs', 'reader.log'),
        'pos-terminal #1 enroll stdout',
      ]),
    );
    const text = (n: string): string => sources.find((x) => x.name === n)?.text ?? '';
    expect(text(join('logs', 'backend.log'))).toContain('/v1/transactions');
    expect(text(join('logs', 'reader.log'))).toContain('"pin-block"');
    expect(names.filter((n) => n.startsWith('HTTP ')).length).toBeGreaterThanOrEqual(8);

    // Allowed: npm start's banner suggests sales with the test card's published PIN (docs/terminal.md;
    // `pos-reader-sim cards` lists it). Those lines only, by their text; any other PIN there still fails.
    const lineOf = (f: Finding): string =>
      (sources.find((x) => x.name === f.source)?.text.split('\n')[f.line - 1] ?? '').trim();
    const banner = (f: Finding): boolean =>
      f.source.startsWith('npm start stdout') &&
      f.kind === 'pin' &&
      (/^Try a sale .*visa-pin has PIN \d+\):$/.test(lineOf(f)) ||
        /^npx pos-terminal transact .*--card visa-pin --pin \d+ +# approved$/.test(lineOf(f)));
    const findings = scanSources(sources, secrets).filter((f) => !banner(f));

    // The ready line hands over the operator password, and nothing else.
    const { literals } = secrets;
    const others = literals.filter((l) => l.label !== 'operator password');
    const readyFindings = scanSources([{ name: 'npm start ready line', text: readyLine }], {
      ...secrets,
      literals: others,
    });
    expect(formatFindings([...findings, ...readyFindings])).toBe('');
  }, 60_000);
});

/** Every secret of this run: from the data directory (after the stop), the catalogue and the client. */
async function collectSecrets(s: System): Promise<SecretSet> {
  const literals: LiteralSecret[] = [...seen];
  const json = (path: string): unknown => JSON.parse(readFileSync(join(s.dir, path), 'utf8'));
  const b64 = (text: string): Uint8Array => {
    const r = parseBase64url(text);
    if (!r.ok) throw new Error('not base64url');
    return r.bytes;
  };

  const bdk = hex(DEV_BDK_HEX);
  literals.push(...binaryForms('key', 'development BDK', bdk));
  const dukpt = z
    .object({
      device: z.object({
        initialKeyId: z.string(),
        counter: z.number().int(),
        registers: z.array(z.string().nullable()),
      }),
    })
    .parse(json('reader/dukpt.json')).device;
  const ikid = hex(dukpt.initialKeyId);
  literals.push(...binaryForms('key', 'reader IPEK', unwrap(aesDukptInitialKey(bdk, ikid)).key));
  for (const r of dukpt.registers)
    if (r !== null) literals.push(...binaryForms('key', 'reader DUKPT register', hex(r)));
  const pinKeys: Uint8Array[] = [];
  for (let counter = 1; counter <= dukpt.counter + 2; counter++) {
    const ksn = parseAesKsn(hex(`${dukpt.initialKeyId}${counter.toString(16).padStart(8, '0')}`));
    if (!ksn.ok) continue;
    const key = unwrap(
      aesDukptWorkingKey({ bdk, ksn: ksn.ksn, usage: 'pin-encryption', keyType: 'aes128' }),
    ).key;
    pinKeys.push(key);
    literals.push(...binaryForms('key', 'reader PIN key', key));
  }
  const Jwk = z.object({ privateKeyJwk: z.object({ d: z.string() }) });
  literals.push(
    ...binaryForms(
      'key',
      'reader identity key',
      b64(Jwk.parse(json('reader/identity.json')).privateKeyJwk.d),
    ),
    ...binaryForms(
      'key',
      'reader manufacturer CA key',
      b64(Jwk.parse(json('reader/manufacturer-ca/ca-key.json')).privateKeyJwk.d),
    ),
    ...binaryForms(
      'key',
      'reader card-token key',
      hex(z.object({ tokenKey: z.string() }).parse(json('reader/device.json')).tokenKey),
    ),
  );
  for (const dir of ['terminal', 'terminal-2']) {
    const key = z.object({ deviceKey: z.string() }).parse(json(`${dir}/terminal.json`)).deviceKey;
    literals.push(...binaryForms('key', `${dir} device private key`, b64(key)));
  }

  const master = b64(readFileSync(join(s.dir, 'backend', 'master.key'), 'utf8').trim());
  literals.push(...binaryForms('key', 'back-end master key', master));
  for (const d of await signingKeys(s, master))
    literals.push(...binaryForms('key', 'ticket-signing private key (JWK d)', d));
  for (const label of ['card tokens v1', 'challenge-mac v1'])
    literals.push(...binaryForms('key', `back-end subkey (${label})`, deriveSubkey(master, label)));
  literals.push(
    {
      kind: 'token',
      label: 'admin token',
      value: readFileSync(join(s.dir, 'backend', 'admin-token'), 'utf8').trim(),
    },
    { kind: 'password', label: 'operator password', value: s.ready.dashboard.password },
  );
  return { pans: TEST_CARDS.map((c) => c.pan), pins: [PIN, WRONG_PIN], literals, pinKeys };
}

/** The back-end's ticket-signing private keys (JWK d), opened with the master key from its store. */
async function signingKeys(s: System, master: Uint8Array): Promise<Uint8Array[]> {
  const store = openSqliteStore({ path: join(s.dir, 'backend', 'backend.sqlite') });
  try {
    const out: Uint8Array[] = [];
    for (const row of await store.listSigningKeys()) {
      const opened = openSealed(master, row.encryptedPrivateKey, row.kid);
      if (!opened.ok) throw new Error(`${opened.code}: a signing key does not open`);
      const d = createPrivateKey({ key: opened.plain, format: 'der', type: 'pkcs8' }).export({
        format: 'jwk',
      }).d;
      if (d === undefined) throw new Error('a signing key has no d');
      out.push(unwrap(parseBase64url(d)).bytes);
    }
    return out;
  } finally {
    await store.close();
  }
}

/** Files in DIR that are output: everything under logs/, and crash reports or dumps anywhere. */
function outputFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, underLogs: boolean): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path, underLogs || name === 'logs');
      else if (st.isFile() && (underLogs || /\.log$|crash|report|dump|core/i.test(name))) out.push(path);
    }
  };
  if (existsSync(dir)) walk(dir, false);
  return out;
}

/** The scanner flags each kind of secret planted in a synthetic log line, and its message holds none. */
function selfCheck(secrets: SecretSet): void {
  const key = secrets.pinKeys?.[0];
  if (key === undefined) throw new Error('no PIN key');
  const pan = TEST_CARDS[0]?.pan ?? '';
  const block = toHex(
    unwrap(
      encodePinBlock({
        format: 4,
        pin: unwrap(pinDigitsFromText(PIN)).pin,
        pan: unwrap(parsePan(pan)).pan,
        key,
      }),
    ).block,
  );
  const literal = (label: string): string => {
    const found = secrets.literals.find((l) => l.label === label);
    if (found === undefined) throw new Error(`no ${label}`);
    return found.value;
  };
  const planted: [string, string, string][] = [
    ['pan', pan, `{"level":30,"msg":"card read","card":"${pan}"}`],
    ['pin', PIN, `{"level":20,"msg":"pin entered","pin":"${PIN}"}`],
    ['pin-block', block, `{"level":10,"pinBlock":"${block}"}`],
    ['key', literal('development BDK'), `bdk=${literal('development BDK')}`],
    ['key', literal('terminal device private key'), `{"d":"${literal('terminal device private key')}"}`],
    ['key', literal('back-end master key'), `master ${literal('back-end master key')}`],
    [
      'key',
      literal('ticket-signing private key (JWK d)'),
      `{"kty":"EC","d":"${literal('ticket-signing private key (JWK d)')}"}`,
    ],
    ['token', literal('admin token'), `authorization: Bearer ${literal('admin token')}`],
    ['password', literal('operator password'), `login operator ${literal('operator password')}`],
    ['cookie', literal('dashboard session cookie'), `cookie: x=${literal('dashboard session cookie')}`],
    [
      'jwt',
      'eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln',
      'PosTicket eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln',
    ],
  ];
  for (const [kind, secret, line] of planted) {
    const findings = scanSources([{ name: 'planted', text: line }], secrets);
    expect(
      findings.map((f) => f.kind),
      `the scanner misses a planted ${kind}`,
    ).toContain(kind);
    expect(formatFindings(findings)).not.toContain(secret);
  }
}
