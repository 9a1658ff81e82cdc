/**
 * `pos-terminal-ui`: the terminal with its UI in a browser (the browser shell).
 *
 *   pos-terminal-ui [--data-dir DIR] [--port N] [--host 127.0.0.1] [--renderer-dir DIR]
 *                   [--reader-serial SERIAL --reader-ca PEM (--reader-path PATH | --reader-vid HEX
 *                    --reader-pid HEX [--reader-transport serial|hid])]
 *
 * The renderer: `--renderer-dir`, else `POS_UI_RENDERER_DIR`, else desktop/dist/renderer.
 *
 * Opens the terminal in DIR (default `.data/start/terminal`, the one `npm start` enrolls; a DIR with no
 * terminal waits for enrollment from the UI, which pairs with the reader the `--reader-*` options name,
 * as `pos-terminal enroll` takes them; without them the UI's enroll is refused),
 * starts its core (reader, halt push, attestation; shell kind `browser`) and serves the UI on loopback.
 * Prints one JSON line `{"event":"ready","url":"http://127.0.0.1:PORT/#c=...","terminalId":...}` on
 * stdout (the URL carries a single-use bootstrap code the page exchanges once for this launch's
 * secret: open it in a browser on this computer; a second page needs a new launch), then notices
 * on stderr. SIGINT / SIGTERM stop it (the sale is cancelled, the reader aborted) and exit 0. Errors:
 * one line `pos-terminal-ui: POS_ERR_...: sentence` on stderr; exit 2 for usage, 1 otherwise.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { Snapshot, TerminalCore } from '../api/contract';
import { CoreStartError, createTerminalCore, type Pairing } from '../app/core';
import type { ShellInfo } from '../core/attest/types';
import { APP_PATH, APP_VERSION } from '../headless/terminal';
import { startBrowserShell, type BrowserShell } from './server';

const here = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_DATA_DIR = resolve(here, '../../../.data/start/terminal');
/** Where `npm run build -w desktop` puts the renderer. */
export const DEFAULT_RENDERER_DIR = resolve(here, '../../dist/renderer');

/**
 * The browser shell as the evidence reports it: a development build of this code, shell `browser`.
 * Devtools and screen capture are left unreported (unknown): the page runs in a browser this process
 * cannot look into.
 */
export function browserShellInfo(): ShellInfo {
  return { kind: 'browser', build: 'development', version: APP_VERSION, packaged: false, appPath: APP_PATH };
}

/** `POS_UI_RENDERER_DIR`: another built renderer (tests build one into a temporary directory). */
function rendererDirFromEnv(): string | undefined {
  const v = process.env['POS_UI_RENDERER_DIR'];
  return v === undefined || v.length === 0 || v.length > 4096 ? undefined : v;
}

const USAGE = `usage: pos-terminal-ui [--data-dir DIR] [--port N] [--host 127.0.0.1] [--renderer-dir DIR]
         [--reader-serial SERIAL --reader-ca PEM (--reader-path PATH | --reader-vid HEX --reader-pid HEX
          [--reader-transport serial|hid])]   the reader the UI's enrollment pairs with`;

const hexId = z
  .string()
  .regex(/^(0x)?[0-9A-Fa-f]{1,4}$/, 'a USB id is 1-4 hex digits')
  .transform((s) => Number.parseInt(s.replace(/^0x/i, ''), 16));

const Args = z.strictObject({
  'data-dir': z.string().min(1).max(4096).optional(),
  'renderer-dir': z.string().min(1).max(4096).optional(),
  port: z
    .string()
    .regex(/^\d{1,5}$/, 'a port number')
    .transform(Number)
    .refine((n) => n <= 65535, 'a port number')
    .optional(),
  host: z
    .string()
    .regex(/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1)$/, 'a loopback address')
    .optional(),
  'reader-serial': z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .optional(),
  'reader-ca': z.array(z.string().min(1).max(4096)).min(1).max(8).optional(),
  'reader-path': z.string().min(1).max(4096).optional(),
  'reader-vid': hexId.optional(),
  'reader-pid': hexId.optional(),
  'reader-transport': z.enum(['serial', 'hid']).optional(),
});
type UiArgs = z.infer<typeof Args>;

/** The manufacturer CA certificates of a PEM file, DER as base64url. */
function pemRoots(pem: string): string[] {
  const out: string[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g))
    out.push(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64').toString('base64url'));
  return out;
}

/** The pairing the `--reader-*` options give: none, one, or a usage error. */
function pairingOf(a: UiArgs): { ok: true; pairing?: Pairing } | { ok: false; detail: string } {
  const given = [
    a['reader-serial'],
    a['reader-ca'],
    a['reader-path'],
    a['reader-vid'],
    a['reader-pid'],
    a['reader-transport'],
  ].some((v) => v !== undefined);
  if (!given) return { ok: true };
  const serial = a['reader-serial'];
  const cas = a['reader-ca'];
  if (serial === undefined || cas === undefined)
    return { ok: false, detail: 'pairing needs --reader-serial and --reader-ca' };
  const byPath = a['reader-path'] !== undefined;
  const byUsb = a['reader-vid'] !== undefined && a['reader-pid'] !== undefined;
  if (byPath === byUsb) return { ok: false, detail: 'give --reader-path, or --reader-vid and --reader-pid' };
  const roots: string[] = [];
  for (const file of cas) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch {
      return { ok: false, detail: '--reader-ca: the file cannot be read' };
    }
    const found = pemRoots(pem);
    if (found.length === 0) return { ok: false, detail: '--reader-ca: the file holds no PEM certificate' };
    roots.push(...found);
  }
  return {
    ok: true,
    pairing: {
      readerSerial: serial,
      readerCaRoots: roots,
      reader: byPath
        ? { transport: 'serial', path: resolve(a['reader-path'] ?? '') }
        : {
            transport: a['reader-transport'] ?? 'serial',
            vendorId: a['reader-vid'] ?? 0,
            productId: a['reader-pid'] ?? 0,
          },
    },
  };
}

export interface UiIo {
  out(line: string): void;
  err(line: string): void;
}

export interface RunningUi {
  readonly core: TerminalCore;
  readonly shell: BrowserShell;
  close(): Promise<void>;
}

/** Parses the arguments and starts the core and the shell; a number is the exit status of a failure. */
export async function startUi(argv: readonly string[], io: UiIo): Promise<RunningUi | number> {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        'data-dir': { type: 'string' },
        'renderer-dir': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'reader-serial': { type: 'string' },
        'reader-ca': { type: 'string', multiple: true },
        'reader-path': { type: 'string' },
        'reader-vid': { type: 'string' },
        'reader-pid': { type: 'string' },
        'reader-transport': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch {
    io.err(`pos-terminal-ui: POS_ERR_DESKTOP_CLI_USAGE: unknown option or missing value\n${USAGE}`);
    return 2;
  }
  const { help, ...rest } = values;
  if (help === true) {
    io.err(USAGE);
    return 0;
  }
  const a = Args.safeParse(rest);
  if (!a.success) {
    const i = a.error.issues[0];
    io.err(
      `pos-terminal-ui: POS_ERR_DESKTOP_CLI_USAGE: ${i === undefined ? 'invalid arguments' : `--${i.path.map(String).join('.')}: ${i.message}`}`,
    );
    return 2;
  }
  const pairing = pairingOf(a.data);
  if (!pairing.ok) {
    io.err(`pos-terminal-ui: POS_ERR_DESKTOP_CLI_USAGE: ${pairing.detail}`);
    return 2;
  }
  const dataDir = resolve(a.data['data-dir'] ?? DEFAULT_DATA_DIR);
  let core: TerminalCore;
  try {
    core = await createTerminalCore({
      dataDir,
      shell: browserShellInfo,
      notice: (l) => io.err(`pos-terminal-ui: ${l}`),
      ...(pairing.pairing === undefined ? {} : { pairing: pairing.pairing }),
    });
  } catch (e) {
    if (e instanceof CoreStartError) io.err(`pos-terminal-ui: ${e.code}: ${e.detail}`);
    else io.err('pos-terminal-ui: POS_ERR_DESKTOP_API_UNAVAILABLE: the terminal core did not start');
    return 1;
  }
  let shell: BrowserShell;
  try {
    shell = await startBrowserShell({
      core,
      rendererDir: resolve(a.data['renderer-dir'] ?? rendererDirFromEnv() ?? DEFAULT_RENDERER_DIR),
      ...(a.data.host === undefined ? {} : { host: a.data.host }),
      ...(a.data.port === undefined ? {} : { port: a.data.port }),
    });
  } catch {
    await core.close();
    io.err(
      'pos-terminal-ui: POS_ERR_DESKTOP_API_UNAVAILABLE: the browser shell could not listen (port in use?)',
    );
    return 1;
  }
  let first: Snapshot | undefined;
  core.subscribe((s) => (first ??= s))();
  io.out(
    JSON.stringify({
      event: 'ready',
      url: shell.url,
      origin: shell.origin,
      dataDir,
      enrolled: first?.enrolled ?? false,
      terminalId: first?.terminalId ?? null,
    }),
  );
  return {
    core,
    shell,
    close: async () => {
      await shell.close();
      await core.close();
    },
  };
}

/** The process entry: runs until SIGINT / SIGTERM. */
export async function main(argv: readonly string[]): Promise<number> {
  const io: UiIo = {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
  };
  const ui = await startUi(argv, io);
  if (typeof ui === 'number') return ui;
  io.err(
    `pos-terminal-ui: open the ready line's URL in a browser on this computer: its single-use code opens one page (Ctrl-C stops)`,
  );
  await new Promise<void>((res) => {
    process.once('SIGINT', () => res());
    process.once('SIGTERM', () => res());
  });
  await ui.close();
  return 0;
}
