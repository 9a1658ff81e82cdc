/**
 * `pos-terminal`: the headless terminal's command line (docs/terminal.md).
 *
 *   pos-terminal enroll --backend URL --code CODE --reader-serial SERIAL --reader-ca PEM
 *                       [--reader-path PATH | --reader-vid HEX --reader-pid HEX [--reader-transport serial|hid]]
 *   pos-terminal status [--json]
 *   pos-terminal transact --amount 12.34 [--currency EUR] [--card NAME] [--simulator URL] [--pin DIGITS]
 *   pos-terminal measure            (this build's reference values, for an operator to approve)
 *
 * Every command takes `--data-dir DIR` (default `.data/start/terminal` in the project, where `npm start`
 * puts its terminal). Arguments go through parseArgs and a zod schema; an error is one line
 * `pos-terminal: POS_ERR_...: sentence` on stderr. Exit status: 0 success (transact: approved), 1 a
 * failure (transact: declined, halted or error; the JSON line says which), 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toBase64url, wipe } from '@pos/shared';
import { z } from 'zod';
import { isAllowedBackendUrl } from '../api/contract';
import { BackendClient } from '../core/backend/client';
import { enrollTerminal } from '../core/backend/enroll';
import { FileKeyStore, type ReaderConfig } from '../core/keys/store';
import type { DesktopCode } from '../core/result';
import type { TxnResult } from '../core/transaction/engine';
import { collectHeadless, HeadlessTerminal, keyFile } from '../headless/terminal';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** One line from standard input (the PIN prompt), or undefined when it closed. */
  readLine(): Promise<string | undefined>;
}

const here = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_DATA_DIR = resolve(here, '../../../.data/start/terminal');

const OPTIONS = {
  'data-dir': { type: 'string' },
  backend: { type: 'string' },
  code: { type: 'string' },
  'reader-serial': { type: 'string' },
  'reader-ca': { type: 'string', multiple: true },
  'reader-path': { type: 'string' },
  'reader-vid': { type: 'string' },
  'reader-pid': { type: 'string' },
  'reader-transport': { type: 'string' },
  json: { type: 'boolean' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  card: { type: 'string' },
  simulator: { type: 'string' },
  pin: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage:
  pos-terminal enroll --backend URL --code CODE --reader-serial SERIAL --reader-ca PEM
                      (--reader-path PATH | --reader-vid HEX --reader-pid HEX [--reader-transport serial|hid])
  pos-terminal status [--json]
  pos-terminal transact --amount 12.34 [--currency EUR] [--card NAME] [--simulator URL] [--pin DIGITS]
  pos-terminal measure    this build's reference values (version, build, code hash, shell) as JSON
every command: [--data-dir DIR] (default .data/start/terminal)`;

const hexId = z
  .string()
  .regex(/^(0x)?[0-9A-Fa-f]{1,4}$/, 'a USB id is 1-4 hex digits')
  .transform((s) => Number.parseInt(s.replace(/^0x/i, ''), 16));

const Common = { 'data-dir': z.string().min(1).max(4096).optional() };

const EnrollArgs = z
  .strictObject({
    ...Common,
    backend: z.url({ protocol: /^https?$/ }).max(2048),
    code: z.string().min(8).max(128),
    'reader-serial': z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    'reader-ca': z.array(z.string().min(1).max(4096)).min(1).max(8),
    'reader-path': z.string().min(1).max(4096).optional(),
    'reader-vid': hexId.optional(),
    'reader-pid': hexId.optional(),
    'reader-transport': z.enum(['serial', 'hid']).optional(),
  })
  .refine(
    (a) =>
      (a['reader-path'] !== undefined) !== (a['reader-vid'] !== undefined && a['reader-pid'] !== undefined),
    'give --reader-path, or --reader-vid and --reader-pid',
  );

const StatusArgs = z.strictObject({ ...Common, json: z.boolean().optional() });

const TransactArgs = z.strictObject({
  ...Common,
  amount: z
    .string()
    .regex(/^\d{1,10}(\.\d{1,2})?$/, 'an amount like 12.34')
    .transform((s) => {
      const [w = '0', f = ''] = s.split('.');
      return Number(w) * 100 + Number(f.padEnd(2, '0'));
    })
    .refine((n) => n >= 1, 'the amount must be at least 0.01'),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default('EUR'),
  card: z
    .string()
    .regex(/^[a-z0-9-]{1,64}$/)
    .optional(),
  simulator: z.url({ protocol: /^http$/ }).optional(),
  pin: z
    .string()
    .regex(/^\d{4,12}$/, 'a PIN is 4 to 12 digits')
    .optional(),
});

const SimulatorFile = z.strictObject({ control: z.url({ protocol: /^http$/ }) });

const usage = (io: CliIo, detail: string): number => {
  io.err(`pos-terminal: POS_ERR_DESKTOP_CLI_USAGE: ${detail}`);
  return 2;
};
const failure = (io: CliIo, code: DesktopCode, detail: string): number => {
  io.err(`pos-terminal: ${code}: ${detail}`);
  return 1;
};

function zodDetail(e: z.ZodError): string {
  const i = e.issues[0];
  if (i === undefined) return 'invalid arguments';
  const where = i.path.length > 0 ? `--${i.path.map(String).join('.')}: ` : '';
  // Never echo a value (a PIN or a code could be in it).
  return `${where}${i.code === 'unrecognized_keys' ? 'not an option of this command' : i.message}`;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch {
    return usage(io, `unknown option or missing value\n${USAGE}`);
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help === true || command === undefined) {
    io.err(USAGE);
    return command === undefined && parsed.values.help !== true ? 2 : 0;
  }
  if (rest.length > 0) return usage(io, 'unexpected argument');
  const { help: _help, ...values } = parsed.values;
  switch (command) {
    case 'enroll': {
      const a = EnrollArgs.safeParse(values);
      if (!a.success) return usage(io, zodDetail(a.error));
      if (!isAllowedBackendUrl(a.data.backend)) {
        io.err(
          'pos-terminal: POS_ERR_DESKTOP_BACKEND_INSECURE: --backend: plain http is allowed only to a loopback host (localhost, 127.0.0.0/8, [::1]); use https',
        );
        return 2;
      }
      return enroll(a.data, io);
    }
    case 'status': {
      const a = StatusArgs.safeParse(values);
      if (!a.success) return usage(io, zodDetail(a.error));
      return status(a.data, io);
    }
    case 'transact': {
      const a = TransactArgs.safeParse(values);
      if (!a.success) return usage(io, zodDetail(a.error));
      return transact(a.data, io);
    }
    case 'measure': {
      const a = z.strictObject(Common).safeParse(values);
      if (!a.success) return usage(io, zodDetail(a.error));
      return measure(io);
    }
    default:
      return usage(io, `unknown command (enroll, status, transact, measure)\n${USAGE}`);
  }
}

const dataDirOf = (a: { 'data-dir'?: string | undefined }): string =>
  resolve(a['data-dir'] ?? DEFAULT_DATA_DIR);

function pemToDer(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    out.push(new Uint8Array(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
  }
  return out;
}

async function enroll(a: z.infer<typeof EnrollArgs>, io: CliIo): Promise<number> {
  const roots: string[] = [];
  for (const file of a['reader-ca']) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch {
      return usage(io, '--reader-ca: the file cannot be read');
    }
    const ders = pemToDer(pem);
    if (ders.length === 0) return usage(io, '--reader-ca: the file holds no PEM certificate');
    roots.push(...ders.map((d) => toBase64url(d)));
  }
  const reader: ReaderConfig =
    a['reader-path'] !== undefined
      ? { transport: 'serial', path: resolve(a['reader-path']) }
      : {
          transport: a['reader-transport'] ?? 'serial',
          vendorId: a['reader-vid'] ?? 0,
          productId: a['reader-pid'] ?? 0,
        };
  const keyStore = new FileKeyStore({ path: keyFile(dataDirOf(a)) });
  const client = new BackendClient({ baseUrl: a.backend, keyStore });
  const r = await enrollTerminal({
    keyStore,
    client,
    code: a.code,
    readerSerial: a['reader-serial'],
    reader,
    readerCaRoots: roots,
    collect: collectHeadless,
  });
  if (!r.ok) return failure(io, r.code, r.detail);
  io.out(
    JSON.stringify({
      event: 'enrolled',
      terminalId: r.enrolled.terminalId,
      merchantId: r.enrolled.merchantId,
      verdict: r.enrolled.verdict.tier,
    }),
  );
  return 0;
}

async function status(a: z.infer<typeof StatusArgs>, io: CliIo): Promise<number> {
  const dir = dataDirOf(a);
  const keyStore = new FileKeyStore({ path: keyFile(dir) });
  const cfg = await keyStore.getConfig();
  if (!cfg.ok) return failure(io, cfg.code, cfg.detail);
  const c = cfg.config;
  const s = {
    dataDir: dir,
    enrolled: c?.terminalId !== undefined,
    terminalId: c?.terminalId ?? null,
    merchantId: c?.merchantId ?? null,
    backend: c?.backendUrl ?? null,
    reader: c?.reader === undefined ? null : { ...c.reader, serial: c.readerSerial ?? null },
    lastVerdict:
      c?.lastVerdict === undefined
        ? null
        : {
            tier: c.lastVerdict.tier,
            at: new Date(c.lastVerdict.at).toISOString(),
            reasons: c.lastVerdict.reasons,
          },
    halted: c?.lastVerdict?.halted ?? false,
    attestationIntervalS: c?.attestationIntervalS ?? null,
  };
  if (a.json === true) io.out(JSON.stringify(s));
  else {
    io.out(
      `terminal     ${s.terminalId ?? 'not enrolled'}${s.merchantId === null ? '' : ` (merchant ${s.merchantId})`}`,
    );
    io.out(`back-end     ${s.backend ?? '-'}`);
    const r = c?.reader;
    io.out(
      `reader       ${r === undefined ? '-' : 'path' in r ? r.path : `${r.transport} ${r.vendorId.toString(16)}:${r.productId.toString(16)}`}${c?.readerSerial === undefined ? '' : ` (serial ${c.readerSerial})`}`,
    );
    io.out(
      `last verdict ${s.lastVerdict === null ? '-' : `${s.lastVerdict.tier} at ${s.lastVerdict.at}${s.lastVerdict.reasons.length > 0 ? ` (${s.lastVerdict.reasons.join(', ')})` : ''}`}`,
    );
    io.out(`halted       ${s.halted ? 'yes' : 'no'}`);
  }
  return 0;
}

async function measure(io: CliIo): Promise<number> {
  const c = await collectHeadless();
  if (c.appCodeHash.status !== 'ok' || typeof c.appCodeHash.value !== 'string')
    return failure(io, 'POS_ERR_DESKTOP_ATTEST_CODE_HASH', "the app's code could not be hashed");
  io.out(
    JSON.stringify({ version: c.version, build: c.build, codeHash: c.appCodeHash.value, shell: c.shell }),
  );
  return 0;
}

interface ResultLine {
  status: TxnResult['status'];
  code: DesktopCode | null;
  cause?: DesktopCode;
  detail?: string;
}

function resultLine(r: TxnResult): ResultLine {
  return {
    status: r.status,
    code: r.code ?? null,
    ...(r.cause === undefined ? {} : { cause: r.cause }),
    ...(r.detail === undefined ? {} : { detail: r.detail }),
  };
}

function simulatorUrl(a: z.infer<typeof TransactArgs>, dir: string): string | undefined {
  if (a.simulator !== undefined) return a.simulator;
  try {
    const f = SimulatorFile.safeParse(JSON.parse(readFileSync(join(dir, 'simulator.json'), 'utf8')));
    return f.success ? f.data.control : undefined;
  } catch {
    return undefined;
  }
}

async function simulatorCard(
  url: string,
  body: object,
): Promise<{ ok: true } | { ok: false; detail: string }> {
  try {
    const res = await fetch(`${url.replace(/\/+$/, '')}/card`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (res.ok) return { ok: true };
    const code = /"code":"(POS_ERR_[A-Z0-9_]+)"/.exec(text)?.[1] ?? `HTTP ${res.status}`;
    return { ok: false, detail: `the simulator refused the card (${code})` };
  } catch {
    return { ok: false, detail: `the simulator's control API at ${url} cannot be reached` };
  }
}

function digitsOf(text: string): Uint8Array {
  const d = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) d[i] = text.charCodeAt(i) - 48;
  return d;
}

async function transact(a: z.infer<typeof TransactArgs>, io: CliIo): Promise<number> {
  const print = (r: ResultLine): number => {
    io.out(JSON.stringify(r));
    return r.status === 'approved' ? 0 : 1;
  };
  const error = (code: DesktopCode, detail: string): number =>
    print({
      status:
        // A decommissioned terminal is halted for good (docs/fleet.md): the same status, its own code.
        code === 'POS_ERR_DESKTOP_TXN_HALTED' ||
        code === 'POS_ERR_TERMINAL_HALTED' ||
        code === 'POS_ERR_TERMINAL_DECOMMISSIONED'
          ? 'halted'
          : 'error',
      code,
      detail,
    });
  let pin: Uint8Array | undefined;
  if (a.pin !== undefined) {
    io.err(
      'pos-terminal: --pin is for tests and development only: a customer enters the PIN on the terminal, never on a command line',
    );
    pin = digitsOf(a.pin);
  }
  const dir = dataDirOf(a);
  const sim = a.card === undefined ? undefined : simulatorUrl(a, dir);
  if (a.card !== undefined && sim === undefined)
    return usage(
      io,
      '--card needs the simulator control URL: --simulator URL (npm start writes it to DIR/simulator.json)',
    );
  const opened = await HeadlessTerminal.open({ dataDir: dir, notice: (l) => io.err(`pos-terminal: ${l}`) });
  if (!opened.ok) return error(opened.code, opened.detail);
  const term = opened.terminal;
  let inserted = false;
  try {
    const conn = await term.connectReader(15_000);
    if (!conn.ok) return error(conn.code, conn.detail);
    await term.connectPush(5000);
    let readerStarted: () => void = () => undefined;
    const started = new Promise<'started'>((res) => (readerStarted = () => res('started')));
    const { engine, dispose } = term.engine({ onReaderStarted: () => readerStarted() });
    try {
      const done = new Promise<TxnResult>((res) => {
        engine.onChange((s) => {
          if (s.state === 'result' && s.result !== undefined) res(s.result);
        });
      });
      engine.onPad((open) => {
        if (!open) return;
        if (pin !== undefined) {
          for (const d of pin) engine.pressDigit(d);
          wipe(pin);
          engine.submitPin();
          return;
        }
        io.err('pos-terminal: enter the PIN and press Enter:');
        void io.readLine().then((line) => {
          if (engine.state !== 'pin') return;
          if (line === undefined || !/^\d{4,12}$/.test(line.trim())) {
            engine.cancel();
            return;
          }
          const digits = digitsOf(line.trim());
          for (const d of digits) engine.pressDigit(d);
          wipe(digits);
          engine.submitPin();
        });
      });
      const b = engine.begin();
      if (!b.ok) return error(b.code, b.detail);
      const e = engine.enterAmount(a.amount, a.currency);
      if (!e.ok) return error(e.code, e.detail);
      // The reader waits for a card only once the sale's pre-transaction attestation allowed it and
      // the reader took the `start`; a sale that ends before (halted, no ticket, no reader) says so.
      const first = await Promise.race([started, done.then(() => 'done' as const)]);
      if (first === 'done') return print(resultLine(await done));
      if (a.card !== undefined && sim !== undefined) {
        const c = await simulatorCard(sim, { card: a.card, action: 'insert' });
        if (!c.ok) {
          engine.cancel();
          return error('POS_ERR_DESKTOP_SIMULATOR', c.detail);
        }
        inserted = true;
      } else io.err('pos-terminal: insert or tap a card on the reader');
      return print(resultLine(await done));
    } finally {
      dispose();
      if (inserted && sim !== undefined) await simulatorCard(sim, { action: 'remove' });
    }
  } finally {
    if (pin !== undefined) wipe(pin);
    await term.close();
  }
}

/** The process entry. */
export async function main(argv: readonly string[]): Promise<number> {
  let rl: ReturnType<typeof createInterface> | undefined;
  const io: CliIo = {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    readLine: () =>
      new Promise((res) => {
        rl ??= createInterface({ input: process.stdin, terminal: false });
        let done = false;
        rl.once('line', (l) => {
          done = true;
          res(l);
        });
        rl.once('close', () => {
          if (!done) res(undefined);
        });
      }),
  };
  try {
    return await runCli(argv, io);
  } finally {
    rl?.close();
  }
}
