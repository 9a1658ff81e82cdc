/**
 * `pos-backend`: runs the A&M service, and verifies or exports its audit chain.
 *
 *   pos-backend [--data-dir DIR] [--port N] [--host H] [--issuer URL] [--master-key-file FILE]
 *               [--database-url postgres://... [--database-schema NAME]] [--tls-cert FILE --tls-key FILE]
 *               [--metrics-token-file FILE]
 *   pos-backend audit verify|export [--data-dir DIR]
 *   pos-backend token rotate [--data-dir DIR]
 *   pos-backend master-key [--out FILE]
 *
 * Without --dev the master key must be given (--master-key-file, env POS_MASTER_KEY or env
 * POS_MASTER_KEY_FILE, the first set wins), else the service refuses to start
 * (POS_ERR_MASTER_KEY_REQUIRED); see master-key.ts for the order and for a key an earlier version left
 * in the data directory.
 *
 * A new admin token is written to `<data dir>/admin-token` (0600), never to the log stream; stderr
 * shows it only when stderr is a terminal.
 * The first stdout line of the server is `{"event":"listening","url":...}`; logs (pino JSON) go to
 * stderr, with secrets redacted.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { publicKeyFromJwk, type TrustedTicketKey } from '@pos/shared';
import { z } from 'zod';
import { deriveSubkey, KeyRing, MASTER_KEY_CHECK_META } from '../keys/keyring';
import { buildApp } from '../server/app';
import { DEFAULT_CONFIG, hashApiToken, newAdminToken } from '../server/context';
import { chainAuditEntry, verifyAuditChain } from '../server/domain';
import { REDACT_PATHS } from '../server/logging';
import { readAudit } from '../server/routes/operator';
import { storeFault } from '../store/faults';
import type { Store } from '../store/types';
import {
  chooseDatabase,
  describeDatabase,
  openBus,
  openDatabase,
  withStartupLock,
  type DatabaseChoice,
} from './database';
import {
  chooseMasterKey,
  DATA_DIR_MASTER_KEY_FILE,
  describeSource,
  generateDevMasterKey,
  MASTER_KEY_USAGE,
  readMasterKey,
  runMasterKeyCommand,
} from './master-key';
import { chooseMetricsTokenFile, metricsPublicWarning, readMetricsTokenFile } from './metrics-token';
import { writeNewSecretFile } from './secret-file';
import { runUserCli, USER_USAGE } from './users';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** stderr is a terminal (a person reads it, not a log collector): only then is a secret shown there. */
  readonly errIsTty?: boolean;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  get errIsTty(): boolean {
    return process.stderr.isTTY;
  },
};

export const DEFAULT_DATA_DIR = '.data/backend';
export const STORE_FILE = 'backend.sqlite';
export const DEV_MASTER_KEY_FILE = DATA_DIR_MASTER_KEY_FILE;
/** Where a new admin token is written (0600), in the data directory: never into the log stream. */
export const ADMIN_TOKEN_FILE = 'admin-token';

const USAGE = `Usage:
  pos-backend [--data-dir DIR] [--port N] [--host H] [--issuer URL] [--master-key-file FILE]
              [--reader-ca PEM ...] [--rate-limit N] [--trust-proxy] [--dev [--dev-ticket-lifetime S]]
              [--database-url postgres://... [--database-schema NAME]] [--tls-cert FILE --tls-key FILE]
              [--metrics-token-file FILE]
  pos-backend audit verify [--data-dir DIR]     verify the audit chain and its signed checkpoints
  pos-backend audit export [--data-dir DIR]     print the audit chain as JSON lines
  pos-backend token rotate [--data-dir DIR]     revoke every admin token; write a new one to DIR/admin-token
${USER_USAGE}
${MASTER_KEY_USAGE}

Defaults: --data-dir ${DEFAULT_DATA_DIR}, --host 127.0.0.1, --port 8080, --rate-limit 600 (requests per
minute per client address; 0 turns it off).
--dev: development mode: with no policy activated, the development policy (dev-2) applies instead of
the production one (prod-1).
--dev-ticket-lifetime S (or env POS_DEV_TICKET_LIFETIME_S): development mode only, tickets live S seconds
(2-60) instead of 60, to try ticket expiry without waiting a minute.
Database: SQLite in the data directory, or PostgreSQL with --database-url (or env DATABASE_URL;
postgres:// or postgresql://) in schema --database-schema (or env DATABASE_SCHEMA; default public).
Several processes may share one PostgreSQL database and schema (docs/postgres.md).
TLS: plain HTTP by default (TLS at a reverse proxy); --tls-cert FILE --tls-key FILE (PEM, both or
neither) serve HTTPS in the process itself, TLS 1.2 or newer.
Metrics: GET /metrics is public unless --metrics-token-file FILE (or env POS_METRICS_TOKEN_FILE) names
a file holding one line of 32-1024 visible ASCII characters (openssl rand -hex 32 > FILE); then it
needs "Authorization: Bearer <that token>". Public on a non-loopback --host or with --trust-proxy
(without --dev) warns.
Master key (required without --dev): --master-key-file FILE, env POS_MASTER_KEY (base64url, 32 bytes)
or env POS_MASTER_KEY_FILE, the first set wins (more than one set warns); make one with
"pos-backend master-key --out FILE", FILE outside the data directory. Without one the service refuses
to start (POS_ERR_MASTER_KEY_REQUIRED), except with --dev, which generates a development key in the
data directory (with a warning). A DIR/master.key that an earlier version generated is still used,
with a warning at every start (docs/backend.md "Master key").`;

/** A shorter ticket lifetime for development (trying ticket expiry), seconds; never longer than the default. */
const DevTicketLifetimeSchema = z
  .string()
  .regex(/^[0-9]{1,2}$/, 'a whole number of seconds, 2-60')
  .transform(Number)
  .refine((n) => n >= 2 && n <= DEFAULT_CONFIG.ticketLifetimeS, 'a whole number of seconds, 2-60');

const OptionsSchema = z.strictObject({
  'data-dir': z.string().min(1).max(4096).default(DEFAULT_DATA_DIR),
  port: z
    .string()
    .regex(/^[0-9]{1,5}$/)
    .transform(Number)
    .refine((n) => n <= 65535, 'port must be 0-65535')
    .default(8080),
  host: z
    .string()
    .regex(/^[A-Za-z0-9.:_-]{1,253}$/)
    .default('127.0.0.1'),
  issuer: z
    .string()
    .regex(/^https?:\/\/[^\s/]+$/, 'issuer is a base URL without a path, like https://am.example.com')
    .optional(),
  'master-key-file': z.string().min(1).max(4096).optional(),
  'database-url': z.string().min(1).max(4096).optional(),
  'database-schema': z.string().min(1).max(63).optional(),
  'trust-proxy': z.boolean().optional(),
  dev: z.boolean().optional(),
  'reader-ca': z.array(z.string().min(1).max(4096)).max(16).optional(),
  'rate-limit': z
    .string()
    .regex(/^[0-9]{1,7}$/)
    .transform(Number)
    .optional(),
  'dev-ticket-lifetime': DevTicketLifetimeSchema.optional(),
  'tls-cert': z.string().min(1).max(4096).optional(),
  'tls-key': z.string().min(1).max(4096).optional(),
  'metrics-token-file': z.string().min(1).max(4096).optional(),
  help: z.boolean().optional(),
});
type Options = z.infer<typeof OptionsSchema>;

function parse(argv: readonly string[]): { positionals: string[]; options: Options } | string {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'data-dir': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        issuer: { type: 'string' },
        'master-key-file': { type: 'string' },
        'database-url': { type: 'string' },
        'database-schema': { type: 'string' },
        'rate-limit': { type: 'string' },
        'dev-ticket-lifetime': { type: 'string' },
        'reader-ca': { type: 'string', multiple: true },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'metrics-token-file': { type: 'string' },
        'trust-proxy': { type: 'boolean' },
        dev: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return e instanceof Error ? (e.message.split('\n')[0] ?? 'bad arguments') : 'bad arguments';
  }
  const options = OptionsSchema.safeParse(parsed.values);
  if (!options.success) {
    const issue = options.error.issues[0];
    return `--${String(issue?.path[0] ?? '?')}: ${issue?.message ?? 'invalid'}`;
  }
  return { positionals: parsed.positionals, options: options.data };
}

/** Manufacturer CA roots from PEM files (one or more certificates each), as DER. */
function loadReaderCaRoots(files: readonly string[]): Uint8Array[] | string {
  const roots: Uint8Array[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return 'POS_ERR_CLI_USAGE: a --reader-ca file cannot be read';
    }
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) return 'POS_ERR_CLI_USAGE: a --reader-ca file holds no PEM certificate';
    for (const pem of blocks) {
      try {
        roots.push(new Uint8Array(new X509Certificate(pem).raw));
      } catch {
        return 'POS_ERR_CLI_USAGE: a --reader-ca certificate does not parse';
      }
    }
  }
  return roots;
}

/**
 * The in-process TLS certificate (chain) and key, PEM, checked before the service starts: both parse
 * and the key belongs to the certificate. Errors name the option, never the files' contents.
 */
function loadTls(certFile: string, keyFile: string): { cert: string; key: string } | string {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, 'utf8');
  } catch {
    return 'POS_ERR_TLS_FILE_UNREADABLE: the --tls-cert file cannot be read';
  }
  try {
    key = readFileSync(keyFile, 'utf8');
  } catch {
    return 'POS_ERR_TLS_FILE_UNREADABLE: the --tls-key file cannot be read';
  }
  // The leaf is the first certificate of the chain.
  const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(cert)?.[0];
  let certificate: X509Certificate;
  try {
    if (leaf === undefined) throw new Error('no certificate');
    certificate = new X509Certificate(leaf);
  } catch {
    return 'POS_ERR_TLS_INVALID: the --tls-cert file holds no valid PEM certificate';
  }
  let privateKey;
  try {
    if (!key.includes('-----BEGIN')) throw new Error('not PEM');
    privateKey = createPrivateKey({ key, format: 'pem' });
  } catch {
    return 'POS_ERR_TLS_INVALID: the --tls-key file holds no valid PEM private key (or it is encrypted)';
  }
  if (!certificate.checkPrivateKey(privateKey))
    return 'POS_ERR_TLS_INVALID: the --tls-key key does not belong to the --tls-cert certificate';
  return { cert, key };
}

/**
 * Creates the data directory (0700). On a read-only file system an existing directory that is already
 * 0700 is used as it is (the store then refuses writes, docs/backend.md "Failures"); any other failure
 * is one coded line, not a stack.
 */
function prepareDataDir(dataDir: string, io: CliIo): boolean {
  const errno = (e: unknown): string =>
    typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'error';
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    return true;
  } catch (e) {
    const fault = storeFault(e);
    if (fault === 'read-only' && existsSync(dataDir) && (statSync(dataDir).mode & 0o077) === 0) {
      io.err(
        `WARNING: the data directory ${dataDir} is on a read-only file system: the store will refuse writes.`,
      );
      return true;
    }
    const code =
      fault === 'read-only'
        ? 'POS_ERR_STORE_READ_ONLY'
        : fault === 'full'
          ? 'POS_ERR_STORE_FULL'
          : 'POS_ERR_STORE';
    io.err(
      `pos-backend: ${code}: the data directory ${dataDir} cannot be created or made private (${errno(e)})`,
    );
    return false;
  }
}

function openStore(dataDir: string, db: DatabaseChoice, io: CliIo): Promise<Store | undefined> {
  return openDatabase(db, dataDir).then((store) => {
    if (typeof store !== 'string') return store;
    io.err(`pos-backend: ${store}`);
    return undefined;
  });
}

/** Appends an audit entry from the CLI (no service context: the store's atomic append, no checkpoint). */
async function auditFromCli(
  store: Store,
  action: string,
  subject: string,
  data: Record<string, unknown>,
  now: number,
): Promise<void> {
  await store.appendAudit(
    { at: new Date(now).toISOString(), actor: 'cli', action, subject, data },
    (prev, draft) => chainAuditEntry(prev, draft),
  );
}

async function createAdminToken(
  store: Store,
  label: string,
  now: number,
): Promise<{ id: string; token: string }> {
  const token = newAdminToken();
  const id = `tok_${now.toString(36)}`;
  await store.createApiToken({
    id,
    tokenHash: hashApiToken(token),
    label,
    role: 'admin',
    merchantId: null,
    createdBy: null,
    createdAt: now,
    expiresAt: null,
    revokedAt: null,
  });
  return { id, token };
}

/**
 * Hands a new admin token over without putting it into the log stream (stderr carries pino's JSON):
 * it is written to `<data dir>/admin-token` (0600, replaced whole, fsync'd; a failed write leaves no
 * file: `writeNewSecretFile`) and only its path is printed; the token itself is printed too only when
 * stderr is a terminal. Not written: `{ ok: false, errno }` and nothing printed (the caller revokes
 * the token, which nobody has).
 */
function handOverToken(
  io: CliIo,
  token: string,
  dataDir: string,
): { readonly ok: true } | { readonly ok: false; readonly errno: string } {
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  try {
    rmSync(file, { force: true });
  } catch (e) {
    return { ok: false, errno: (e as NodeJS.ErrnoException).code ?? 'EIO' };
  }
  const written = writeNewSecretFile(file, `${token}\n`);
  if (!written.ok) return written;
  io.err('='.repeat(72));
  io.err(`ADMIN API TOKEN written to ${file} (mode 0600). Read it, store it safely, then delete the file.`);
  if (io.errIsTty === true) io.err(`  ${token}`);
  io.err('Use it as "Authorization: Bearer <token>" on the operator routes (/v1/merchants, ...).');
  io.err(`To replace it: pos-backend token rotate --data-dir ${dataDir}`);
  io.err('='.repeat(72));
  return { ok: true };
}

/** The hand-over failed: the token is revoked (audited) and the reason is one coded line. */
async function revokeUnhandedToken(
  io: CliIo,
  store: Store,
  id: string,
  dataDir: string,
  errno: string,
  then: string,
): Promise<void> {
  const now = Date.now();
  await store.revokeApiToken(id, now);
  await auditFromCli(store, 'token.revoke', id, { reason: 'admin-token file not written', errno }, now);
  io.err(
    `pos-backend: POS_ERR_ADMIN_TOKEN_UNWRITABLE: ${join(dataDir, ADMIN_TOKEN_FILE)} could not be written (${errno}); the new admin token was revoked; ${then}`,
  );
}

function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

async function trustedKeysOf(store: Store): Promise<TrustedTicketKey[]> {
  const out: TrustedTicketKey[] = [];
  for (const row of await store.listSigningKeys()) {
    const k = publicKeyFromJwk(JSON.parse(row.publicJwk) as unknown);
    if (k.ok) out.push({ kid: row.kid, publicKey: k.publicKey });
  }
  return out;
}

async function auditCommand(
  sub: string | undefined,
  dataDir: string,
  io: CliIo,
  db: DatabaseChoice,
): Promise<number> {
  if (db.engine === 'sqlite' && !existsSync(db.path)) {
    io.err(`pos-backend: POS_ERR_STORE: no store in ${dataDir}`);
    return 1;
  }
  const store = await openStore(dataDir, db, io);
  if (store === undefined) return 1;
  try {
    const entries = await readAudit({ store });
    if (sub === 'export') {
      for (const e of entries) io.out(JSON.stringify(e));
      return 0;
    }
    const checkpoints = await store.listCheckpoints();
    const result = verifyAuditChain(entries, { checkpoints, keys: await trustedKeysOf(store) });
    io.out(
      JSON.stringify(
        result.ok
          ? { valid: true, count: result.count, head: result.head, checkpoints: checkpoints.length }
          : { valid: false, code: result.code, detail: result.detail },
      ),
    );
    return result.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

/** Runs the CLI. For the server, resolves once it listens and returns a stop function. */
export async function runCli(
  argv: readonly string[],
  io: CliIo = processIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stop?: () => Promise<void> }> {
  if (argv[0] === 'user')
    return {
      code: await runUserCli(argv.slice(1), io, env, { dataDir: DEFAULT_DATA_DIR, storeFile: STORE_FILE }),
    };
  if (argv[0] === 'master-key') return { code: runMasterKeyCommand(argv.slice(1), io) };
  const parsed = parse(argv);
  if (typeof parsed === 'string') {
    io.err(`pos-backend: POS_ERR_CLI_USAGE: ${parsed}`);
    io.err(USAGE);
    return { code: 2 };
  }
  const { positionals, options } = parsed;
  if (options.help === true) {
    io.out(USAGE);
    return { code: 0 };
  }
  const dataDir = resolve(options['data-dir']);
  const db = chooseDatabase(options, env, dataDir, STORE_FILE);
  if (typeof db === 'string') {
    io.err(`pos-backend: ${db}`);
    return { code: 2 };
  }
  const [cmd, sub, ...extra] = positionals;
  if (extra.length > 0) {
    io.err(`pos-backend: POS_ERR_CLI_USAGE: unexpected argument`);
    return { code: 2 };
  }
  if (cmd === 'audit') {
    if (sub !== 'verify' && sub !== 'export') {
      io.err('pos-backend: POS_ERR_CLI_USAGE: audit takes verify or export');
      return { code: 2 };
    }
    return { code: await auditCommand(sub, dataDir, io, db) };
  }
  if (cmd === 'token') {
    if (sub !== 'rotate') {
      io.err('pos-backend: POS_ERR_CLI_USAGE: token takes rotate');
      return { code: 2 };
    }
    const store = await openStore(dataDir, db, io);
    if (store === undefined) return { code: 1 };
    try {
      const now = Date.now();
      // The new token is handed over before the others are revoked: if its file cannot be written,
      // the new one is revoked instead and every token that worked still works.
      const created = await createAdminToken(store, 'admin (rotated)', now);
      const handed = handOverToken(io, created.token, dataDir);
      if (!handed.ok) {
        await revokeUnhandedToken(io, store, created.id, dataDir, handed.errno, 'no other token was revoked');
        return { code: 1 };
      }
      const revoked: string[] = [];
      for (const t of await store.listApiTokens()) {
        if (t.id !== created.id && t.revokedAt === null && (await store.revokeApiToken(t.id, now)))
          revoked.push(t.id);
      }
      await auditFromCli(store, 'token.rotate', created.id, { revoked, label: 'admin (rotated)' }, now);
      return { code: 0 };
    } finally {
      await store.close();
    }
  }
  if (cmd !== undefined) {
    io.err(`pos-backend: POS_ERR_CLI_USAGE: unknown command`);
    io.err(USAGE);
    return { code: 2 };
  }

  // The server.
  if ((options['tls-cert'] === undefined) !== (options['tls-key'] === undefined)) {
    io.err('pos-backend: POS_ERR_CLI_USAGE: --tls-cert and --tls-key go together (both or neither)');
    io.err(USAGE);
    return { code: 2 };
  }
  let tls: { cert: string; key: string } | undefined;
  if (options['tls-cert'] !== undefined && options['tls-key'] !== undefined) {
    const loaded = loadTls(options['tls-cert'], options['tls-key']);
    if (typeof loaded === 'string') {
      io.err(`pos-backend: ${loaded}`);
      return { code: 1 };
    }
    tls = loaded;
  }
  // The metrics scrape token, from a file (never the command line): unreadable or malformed is one line.
  const metricsTokenSource = chooseMetricsTokenFile(options['metrics-token-file'], env);
  let metricsToken: string | undefined;
  let metricsTokenWarnings: readonly string[] = [];
  if (metricsTokenSource !== undefined) {
    const read = readMetricsTokenFile(metricsTokenSource);
    if (typeof read === 'string') {
      io.err(`pos-backend: ${read}`);
      return { code: 1 };
    }
    metricsToken = read.token;
    metricsTokenWarnings = read.warnings;
  }
  const readerCaRoots = loadReaderCaRoots(options['reader-ca'] ?? []);
  if (typeof readerCaRoots === 'string') {
    io.err(`pos-backend: ${readerCaRoots}`);
    return { code: 2 };
  }
  // Development only: shorter tickets (docs/backend.md), from the option or POS_DEV_TICKET_LIFETIME_S.
  const lifetimeText = options['dev-ticket-lifetime'] ?? env['POS_DEV_TICKET_LIFETIME_S'];
  let devTicketLifetimeS: number | undefined;
  if (lifetimeText !== undefined && lifetimeText !== '') {
    const lifetime =
      typeof lifetimeText === 'number' ? lifetimeText : DevTicketLifetimeSchema.safeParse(lifetimeText).data;
    if (lifetime === undefined) {
      io.err('pos-backend: POS_ERR_CLI_USAGE: --dev-ticket-lifetime: a whole number of seconds, 2-60');
      return { code: 2 };
    }
    if (options.dev !== true) {
      io.err('pos-backend: POS_ERR_CLI_USAGE: --dev-ticket-lifetime is a development option (needs --dev)');
      return { code: 2 };
    }
    devTicketLifetimeS = lifetime;
  }
  // The master key's source, before anything is written: no key and no --dev is one line and exit 1.
  const keyChoice = chooseMasterKey(options['master-key-file'], env, dataDir, options.dev === true);
  if (typeof keyChoice === 'string') {
    io.err(`pos-backend: ${keyChoice}`);
    return { code: 1 };
  }
  if (readerCaRoots.length === 0) {
    io.err(
      'WARNING: no --reader-ca: reader status cannot be verified, so verdicts are at best warning and no PIN-entry ticket is issued.',
    );
  }
  for (const line of metricsTokenWarnings) io.err(line);
  const metricsPublic =
    metricsToken === undefined && options.dev !== true
      ? metricsPublicWarning({ host: options.host, trustProxy: options['trust-proxy'] === true })
      : undefined;
  if (metricsPublic !== undefined) io.err(metricsPublic);
  if (options.dev === true) {
    io.err(
      'WARNING: development mode (--dev): with no policy activated, the development policy dev-2 applies (browser shell may take PINs). Never use --dev in production.',
    );
    if (devTicketLifetimeS !== undefined)
      io.err(`WARNING: development ticket lifetime: tickets expire ${devTicketLifetimeS} s after issue.`);
  }
  if (!prepareDataDir(dataDir, io)) return { code: 1 };
  const warn = (line: string): void => io.err(line);
  const { source } = keyChoice;
  let master: Uint8Array | string | undefined =
    source.kind === 'generate' ? undefined : readMasterKey({ ...keyChoice, source }, env, warn);
  if (typeof master === 'string') {
    io.err(`pos-backend: ${master}`);
    return { code: 1 };
  }
  const store = await openStore(dataDir, db, io);
  if (store === undefined) return { code: 1 };
  if (master === undefined) {
    // --dev with no key: a new one, unless the store was made under a key that is now missing.
    // A store that does not answer is no reason to make a key: refuse instead.
    const stored = await store.getMeta(MASTER_KEY_CHECK_META).then(
      (value) => ({ value }),
      () => undefined,
    );
    master =
      stored === undefined
        ? 'POS_ERR_UNAVAILABLE: the store did not answer'
        : generateDevMasterKey(join(dataDir, DATA_DIR_MASTER_KEY_FILE), stored.value !== undefined, warn);
    if (typeof master === 'string') {
      io.err(`pos-backend: ${master}`);
      await store.close();
      return { code: 1 };
    }
  }
  const masterKey = master;
  const now = Date.now();
  // PostgreSQL: one process at a time, so processes starting together share one signing key.
  const opened = await withStartupLock(db, () =>
    KeyRing.open(store, masterKey, now, { ticketLifetimeS: DEFAULT_CONFIG.ticketLifetimeS }),
  ).catch(() => ({ ok: false as const, code: 'POS_ERR_UNAVAILABLE', detail: 'the database did not answer' }));
  if (!opened.ok) {
    // A wrong key: the message names where the key came from, never the key.
    const from = opened.code === 'POS_ERR_MASTER_KEY_INVALID' ? ` (from ${describeSource(source)})` : '';
    io.err(`pos-backend: ${opened.code}: ${opened.detail}${from}`);
    await store.close();
    return { code: 1 };
  }
  const port = options.port === 0 ? await freePort(options.host) : options.port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `${tls === undefined ? 'http' : 'https'}://${hostForUrl}:${port}`;
  const level = z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .catch('info')
    .parse(env['POS_LOG_LEVEL']);
  const logger = pino(
    { level, redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } },
    pino.destination(2),
  );
  // PostgreSQL: the LISTEN/NOTIFY bus, so halts and events reach every process on this database.
  const bus = await openBus(db, (message) => logger.warn({ event: 'bus' }, message));
  if (typeof bus === 'string') {
    io.err(`pos-backend: ${bus}`);
    await store.close();
    return { code: 1 };
  }
  const instanceId = randomUUID();
  logger.info({ event: 'store', engine: store.engine, instanceId }, describeDatabase(db));
  const app = await buildApp({
    store,
    keys: opened.ring,
    ...(bus === undefined ? {} : { bus }),
    instanceId,
    config: {
      issuer: options.issuer ?? url,
      trustProxy: options['trust-proxy'] === true,
      development: options.dev === true,
      ...(devTicketLifetimeS === undefined ? {} : { ticketLifetimeS: devTicketLifetimeS }),
      ...(options['rate-limit'] === undefined
        ? {}
        : { rateLimitPerMinute: options['rate-limit'] === 0 ? false : options['rate-limit'] }),
    },
    logger,
    cardTokenKey: deriveSubkey(masterKey, 'card tokens v1'),
    readerCaRoots,
    ...(tls === undefined ? {} : { tls }),
    ...(metricsToken === undefined ? {} : { metricsToken }),
  });
  // Before listening, so the first-start admin token exists once the listening line is out (stdout
  // stays the listening line first; the hand-over goes to stderr). initMeta: when several processes
  // start at once on a new PostgreSQL database, one creates the token.
  const at = Date.now();
  if ((await store.listApiTokens()).length === 0 && (await store.initMeta('first_admin_token', String(at)))) {
    const created = await createAdminToken(store, 'admin (first start)', at);
    await auditFromCli(store, 'token.create', created.id, { label: 'admin (first start)' }, at);
    const handed = handOverToken(io, created.token, dataDir);
    if (!handed.ok)
      await revokeUnhandedToken(
        io,
        store,
        created.id,
        dataDir,
        handed.errno,
        'the service starts; run `pos-backend token rotate` once the data directory is writable',
      );
  }
  await app.listen({ port, host: options.host });
  io.out(JSON.stringify({ event: 'listening', url }));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    // Stop accepting, let in-flight requests finish (Fastify close), then the store closes (onClose hook).
    stopping ??= app
      .close()
      .then(() => bus?.close())
      .then(() => logger.flush());
    return stopping;
  };
  return { code: 0, stop };
}

/** The process entry: runs the CLI and wires SIGINT/SIGTERM to a graceful shutdown. */
export async function main(argv: readonly string[]): Promise<void> {
  const result = await runCli(argv);
  process.exitCode = result.code;
  const stop = result.stop;
  if (stop === undefined) return;
  let signalled = false;
  const onSignal = (signal: string): void => {
    if (signalled) return;
    signalled = true;
    processIo.err(JSON.stringify({ event: 'shutdown', signal }));
    const timer = setTimeout(() => {
      processIo.err(JSON.stringify({ event: 'shutdown-timeout' }));
      process.exit(1);
    }, 10_000);
    timer.unref();
    stop().then(
      () => {
        process.exitCode = 0;
      },
      () => {
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
}
