/**
 * `pos-reader-sim`: the reader simulator's command line.
 *
 *   pos-reader-sim [--state-dir DIR] [--transport serial|hid] [--control HOST:PORT] [--serial-path PATH]
 *                  [--baud N] [--pace] [--trust-jwks FILE]
 *   pos-reader-sim init [--state-dir DIR] [--trust-jwks FILE]
 *   pos-reader-sim trust --jwks FILE|URL [--state-dir DIR]
 *   pos-reader-sim cards [--json]
 *
 * Running prints one JSON line `{"event":"ready",...}` first, then one JSON line per event on stdout
 * (never a PIN, PAN, key or token); human help goes to stderr. Arguments are parsed with node:util
 * parseArgs and then a schema; a bad one is one line with a POS_ERR_ code and exit status 2.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { maskPan, TEST_CARDS } from '@pos/shared';
import { z } from 'zod';
import { DEVICE_SIM_ERRORS } from '../errors';
import type { SimCode } from '../result';
import { Simulator } from '../sim';
import { startDemo, type Demo } from './demo';
import { defaultStateDir, openReaderState } from '../state/store';
import { saveTrust } from '../state/trust';
import { CA_CERT_FILE, CA_DIR, READER_CERT_FILE } from '../state/identity';
import { join } from 'node:path';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  readonly stdin: NodeJS.ReadStream | undefined;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  onSignal(cb: () => void): void;
}

const USAGE = `Usage:
  pos-reader-sim [--state-dir DIR] [--transport serial|hid] [--control HOST:PORT]
                 [--serial-path PATH] [--baud N] [--pace] [--trust-jwks FILE]
  pos-reader-sim --demo [--state-dir DIR]   (a built-in terminal drives the reader: press i)
  pos-reader-sim init  [--state-dir DIR] [--trust-jwks FILE]
  pos-reader-sim trust --jwks FILE|URL [--state-dir DIR]
  pos-reader-sim cards [--json]

Runs the simulated secure card reader. The first stdout line is {"event":"ready",...} with the
pseudo-terminal the terminal opens ("path") and the control API ("control"); then one JSON event per
line. State (identity key, certificate, KSN, trusted keys) lives in --state-dir (default
~/.pos-reader-sim). See docs/reader-simulator.md.`;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

const HostPortSchema = z
  .string()
  .regex(/^(?:\[::1\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'HOST:PORT')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    const host = s.slice(0, i);
    return { host: host === '[::1]' ? '::1' : host, port: Number(s.slice(i + 1)) };
  })
  .refine(
    (hp) => LOOPBACK.has(hp.host),
    'the control API listens on loopback only (127.0.0.1, ::1, localhost)',
  )
  .refine((hp) => hp.port <= 65535, 'the port is 0..65535');

const RunArgsSchema = z.strictObject({
  'state-dir': z.string().min(1).max(4096).optional(),
  transport: z.enum(['serial', 'hid']).default('serial'),
  control: HostPortSchema.default({ host: '127.0.0.1', port: 0 }),
  'serial-path': z.string().min(1).max(4096).optional(),
  baud: z.coerce.number().int().min(300).max(4_000_000).default(115_200),
  pace: z.boolean().default(false),
  'trust-jwks': z.string().min(1).max(4096).optional(),
  demo: z.boolean().default(false),
  help: z.boolean().optional(),
});

const TrustArgsSchema = z.strictObject({
  'state-dir': z.string().min(1).max(4096).optional(),
  jwks: z.string().min(1).max(4096),
  help: z.boolean().optional(),
});

const InitArgsSchema = z.strictObject({
  'state-dir': z.string().min(1).max(4096).optional(),
  'trust-jwks': z.string().min(1).max(4096).optional(),
  help: z.boolean().optional(),
});

const CardsArgsSchema = z.strictObject({ json: z.boolean().optional(), help: z.boolean().optional() });

const OPTIONS = {
  'state-dir': { type: 'string' },
  transport: { type: 'string' },
  control: { type: 'string' },
  'serial-path': { type: 'string' },
  baud: { type: 'string' },
  pace: { type: 'boolean' },
  demo: { type: 'boolean' },
  'trust-jwks': { type: 'string' },
  jwks: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

class CliError extends Error {
  constructor(
    readonly code: SimCode,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

function parse<S extends z.ZodType>(schema: S, values: Record<string, unknown>): z.infer<S> {
  const r = schema.safeParse(values);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    const what =
      issue?.code === 'unrecognized_keys'
        ? `option not taken by this command`
        : (issue?.message ?? 'invalid');
    throw new CliError('POS_ERR_SIM_CLI_ARGS', `${where === '' ? '' : `--${where}: `}${what}`);
  }
  return r.data;
}

function readJwksFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CliError('POS_ERR_SIM_CLI_ARGS', 'the JWKS file cannot be read');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError('POS_ERR_SIM_TRUST_INVALID', 'the JWKS file is not JSON');
  }
}

/** A JWKS from a file, or from an http URL on loopback (the local back-end's JWKS endpoint). */
async function loadJwks(source: string): Promise<unknown> {
  if (!/^https?:\/\//.test(source)) return readJwksFile(source);
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new CliError('POS_ERR_SIM_CLI_ARGS', 'the JWKS URL is not a URL');
  }
  if (!LOOPBACK.has(url.hostname)) {
    throw new CliError('POS_ERR_SIM_CLI_ARGS', 'a JWKS URL must be on loopback (127.0.0.1, ::1, localhost)');
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
    if (!res.ok) throw new CliError('POS_ERR_SIM_TRUST_INVALID', `the JWKS URL answered HTTP ${res.status}`);
    const body: unknown = await res.json();
    return body;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError('POS_ERR_SIM_TRUST_INVALID', 'the JWKS URL cannot be fetched as JSON');
  }
}

function cardsTable(): {
  name: string;
  scheme: string;
  maskedPan: string;
  pin: string;
  onlinePin: boolean;
  issuer: string;
  exercises: string;
}[] {
  return TEST_CARDS.map((c) => ({
    name: c.name,
    scheme: c.scheme,
    maskedPan: maskPan(c.pan),
    pin: c.pin,
    onlinePin: c.onlinePin,
    issuer: c.issuer.outcome === 'approve' ? 'approve' : `decline (${c.issuer.reason})`,
    exercises: c.exercises,
  }));
}

const KEY_HELP = (card: string) =>
  `keys: i insert  p tap  r remove  1-${TEST_CARDS.length} card (now ${card})  t tamper  s status  q quit`;

/** Runs the CLI; resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`pos-reader-sim: ${e.code}: ${e.detail}`);
      return 2;
    }
    io.err(`pos-reader-sim: POS_ERR_SIM_INTERNAL: ${DEVICE_SIM_ERRORS.POS_ERR_SIM_INTERNAL}`);
    return 1;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch {
    throw new CliError('POS_ERR_SIM_CLI_ARGS', 'unknown option or missing value (see --help)');
  }
  const [command, ...extra] = parsed.positionals;
  if (extra.length > 0) throw new CliError('POS_ERR_SIM_CLI_ARGS', 'too many arguments (see --help)');
  const values = parsed.values as Record<string, unknown>;
  if (values['help'] === true) {
    io.err(USAGE);
    return 0;
  }
  switch (command) {
    case undefined:
      return run(parse(RunArgsSchema, values), io);
    case 'init': {
      const a = parse(InitArgsSchema, values);
      const dir = a['state-dir'] ?? defaultStateDir();
      const opened = await openReaderState(dir);
      if (!opened.ok) throw new CliError(opened.code, opened.detail);
      if (a['trust-jwks'] !== undefined) {
        const t = saveTrust(dir, readJwksFile(a['trust-jwks']));
        if (!t.ok) throw new CliError(t.code, t.detail);
      }
      io.out(
        JSON.stringify({
          event: 'init',
          created: opened.state.created,
          serial: opened.state.serial,
          tampered: opened.state.tampered,
          stateDir: dir,
          readerCertificate: join(dir, READER_CERT_FILE),
          caCertificate: join(dir, CA_DIR, CA_CERT_FILE),
        }),
      );
      return 0;
    }
    case 'trust': {
      const a = parse(TrustArgsSchema, values);
      const dir = a['state-dir'] ?? defaultStateDir();
      const opened = await openReaderState(dir);
      if (!opened.ok) throw new CliError(opened.code, opened.detail);
      const t = saveTrust(dir, await loadJwks(a.jwks));
      if (!t.ok) throw new CliError(t.code, t.detail);
      io.out(JSON.stringify({ event: 'trust', keys: t.keys.map((k) => k.kid) }));
      return 0;
    }
    case 'cards': {
      const a = parse(CardsArgsSchema, values);
      const rows = cardsTable();
      if (a.json === true) io.out(JSON.stringify(rows));
      else
        for (const r of rows)
          io.out(
            `${r.name.padEnd(24)} ${r.scheme.padEnd(10)} ${r.maskedPan.padEnd(17)} PIN ${r.pin.padEnd(6)} ${r.exercises}`,
          );
      return 0;
    }
    default:
      throw new CliError('POS_ERR_SIM_CLI_ARGS', `unknown command '${command.slice(0, 20)}' (see --help)`);
  }
}

async function run(a: z.infer<typeof RunArgsSchema>, io: CliIo): Promise<number> {
  const dir = a['state-dir'] ?? defaultStateDir();
  if (a.transport === 'hid' && !a.demo) {
    throw new CliError(
      'POS_ERR_SIM_CLI_ARGS',
      'the HID transport is in-process only: this machine cannot create a kernel HID device (no /dev/uhid); see docs/reader-simulator.md',
    );
  }
  if (a['trust-jwks'] !== undefined) {
    const opened = await openReaderState(dir);
    if (!opened.ok) throw new CliError(opened.code, opened.detail);
    if (!opened.state.tampered) {
      const t = saveTrust(dir, readJwksFile(a['trust-jwks']));
      if (!t.ok) throw new CliError(t.code, t.detail);
    }
  }
  const started = await Simulator.start({
    stateDir: dir,
    // The demo's terminal is in process, on the HID link: nothing else can reach the reader then.
    transport: a.demo ? 'hid' : a.transport,
    ...(a['serial-path'] === undefined ? {} : { serialPath: a['serial-path'] }),
    baudRate: a.baud,
    ...(a.pace ? { paceBaud: a.baud } : {}),
    control: a.control,
    onEvent: (e) => io.out(JSON.stringify({ ...e, at: new Date().toISOString() })),
  });
  if (!started.ok) throw new CliError(started.code, started.detail);
  const sim = started.sim;
  io.out(JSON.stringify(sim.ready));
  const emitLine = (e: Record<string, unknown>): void =>
    io.out(JSON.stringify({ ...e, at: new Date().toISOString() }));
  let demo: Demo | undefined;
  if (a.demo) {
    const d = await startDemo(sim, emitLine);
    if ('code' in d) {
      await sim.stop();
      throw new CliError(d.code as SimCode, d.detail);
    }
    demo = d;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      const stdin = io.stdin;
      if (stdin?.isTTY === true) {
        stdin.setRawMode(false);
        stdin.pause();
      }
      demo?.stop();
      void sim.stop().then(() => {
        io.out(JSON.stringify({ event: 'stopped', at: new Date().toISOString() }));
        resolve(0);
      });
    };
    io.onSignal(stop);
    const stdin = io.stdin;
    if (stdin?.isTTY === true) {
      let cardIndex = 0;
      const cardName = (): string => TEST_CARDS[cardIndex]?.name ?? 'visa-pin';
      io.err(KEY_HELP(cardName()));
      stdin.setRawMode(true);
      stdin.setEncoding('utf8');
      const report = (r: { ok: boolean; code?: string }): void => {
        if (!r.ok) io.err(`refused: ${r.code ?? ''}`);
      };
      const onKey = (key: string): void => {
        if (key === 'q' || key === '\u0003') stop();
        else if (key === 'i') report(sim.card({ card: cardName(), action: 'insert' }));
        else if (key === 'p') report(sim.card({ card: cardName(), action: 'tap' }));
        else if (key === 'r') report(sim.card({ action: 'remove' }));
        else if (key === 't') report(sim.tamper('keyboard'));
        else if (key === 's') io.out(JSON.stringify({ event: 'status', ...sim.status() }));
        else if (/^[1-9]$/.test(key) && Number(key) <= TEST_CARDS.length) {
          cardIndex = Number(key) - 1;
          io.err(`card: ${cardName()}`);
        } else if (key !== '\r' && key !== '\n') io.err(KEY_HELP(cardName()));
      };
      // Keys typed quickly (or pasted) arrive together: one action per character.
      stdin.on('data', (chunk: string) => {
        for (const key of chunk) onKey(key);
      });
    }
  });
}
