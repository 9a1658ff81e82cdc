/**
 * Where `pos-backend` takes its master key from, and `pos-backend master-key` (a new key).
 *
 * The master key seals the ticket-signing private keys in the store and derives the challenge MAC and
 * card-token keys, so it must not live next to the data it protects. In order (the explicit option wins
 * over the environment, as for every other option; when more than one of the three sources of 1-2 is
 * set, one warning names them, never a key):
 *
 *   1. `--master-key-file FILE` (one line of base64url, 32 bytes);
 *   2. env `POS_MASTER_KEY` (the key itself), else env `POS_MASTER_KEY_FILE` (a file, as 1);
 *   3. `<data dir>/master.key` when it exists: made by `--dev`, or by an earlier pos-backend that
 *      generated it without `--dev` too. Outside `--dev` it is still used (a store is never lost) with
 *      a loud warning at every start and the way to move it out;
 *   4. with `--dev` only: a new development key written to `<data dir>/master.key` (0600), unless the
 *      store already has a master key (a new key would not open its sealed keys);
 *   5. otherwise the service refuses to start: `POS_ERR_MASTER_KEY_REQUIRED`, exit 1, before the data
 *      directory is created.
 */
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { generateMasterKeyText, parseMasterKey } from '../keys/keyring';
import {
  othersMayAccess,
  readSmallSecretFile,
  sharedSecretFileWarning,
  writeNewSecretFile,
} from './secret-file';

/** The file name of a master key generated in the data directory (development, or earlier versions). */
export const DATA_DIR_MASTER_KEY_FILE = 'master.key';
/** A master key file is one line of 43 characters; anything much larger is not one (read no further). */
const MAX_KEY_FILE_BYTES = 1024;

export const MASTER_KEY_USAGE = `  pos-backend master-key [--out FILE]          print a new master key (32 random bytes, base64url);
                                               --out writes it to FILE (0600, never overwritten)`;

/** One line telling how to make and pass a master key (the refusal, and the warnings). */
export const MASTER_KEY_HOW =
  'make one with "pos-backend master-key --out FILE" (FILE outside the data directory, backed up apart from it) and start with --master-key-file FILE or env POS_MASTER_KEY';

export type MasterKeySource =
  | { readonly kind: 'env' }
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly via: '--master-key-file' | 'POS_MASTER_KEY_FILE';
    }
  /** `<data dir>/master.key`, already there. */
  | { readonly kind: 'data-dir'; readonly path: string }
  /** `--dev` with no key anywhere: a new one goes to `<data dir>/master.key`. */
  | { readonly kind: 'generate'; readonly path: string };

/** A source the key is read from (every one but `generate`). */
export type ReadableSource = Exclude<MasterKeySource, { readonly kind: 'generate' }>;

export interface MasterKeyChoice {
  readonly dev: boolean;
  readonly dataDir: string;
  readonly source: MasterKeySource;
  /** The other sources that were set too and are not used (names, for the warning). */
  readonly ignored: readonly string[];
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** The real path of `path`: symbolic links resolved in the part that exists, the rest appended. */
function realpathOfExisting(path: string): string {
  const tail: string[] = [];
  let current = resolve(path);
  for (;;) {
    try {
      return join(realpathSync(current), ...tail.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return resolve(path);
      tail.push(basename(current));
      current = parent;
    }
  }
}

/** Whether `path` is `dir` or below it, compared by real paths (a link into `dir` is inside it). */
function isInside(path: string, dir: string): boolean {
  const rel = relative(realpathOfExisting(dir), realpathOfExisting(path));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Chooses the source without creating or writing anything. A string is the refusal line (the code and
 * what to do), for the service to print before it touches the data directory.
 */
export function chooseMasterKey(
  option: string | undefined,
  env: NodeJS.ProcessEnv,
  dataDir: string,
  dev: boolean,
): MasterKeyChoice | string {
  const inDataDir = join(dataDir, DATA_DIR_MASTER_KEY_FILE);
  const fromEnv = nonEmpty(env['POS_MASTER_KEY']);
  const fromEnvFile = nonEmpty(env['POS_MASTER_KEY_FILE']);
  const given = [
    option === undefined ? undefined : '--master-key-file',
    fromEnv === undefined ? undefined : 'POS_MASTER_KEY',
    fromEnvFile === undefined ? undefined : 'POS_MASTER_KEY_FILE',
  ].filter((name) => name !== undefined);
  let source: MasterKeySource;
  if (option !== undefined) source = { kind: 'file', path: resolve(option), via: '--master-key-file' };
  else if (fromEnv !== undefined) source = { kind: 'env' };
  else if (fromEnvFile !== undefined)
    source = { kind: 'file', path: resolve(fromEnvFile), via: 'POS_MASTER_KEY_FILE' };
  else if (existsSync(inDataDir)) source = { kind: 'data-dir', path: inDataDir };
  else if (dev) source = { kind: 'generate', path: inDataDir };
  else
    return `POS_ERR_MASTER_KEY_REQUIRED: no master key (and no --dev): ${MASTER_KEY_HOW}; see docs/backend.md "Master key"`;
  return { dev, dataDir, source, ignored: given.slice(1) };
}

/** The option or variable a given key came from (never the key, nor the path). */
function describeKind(source: MasterKeySource): string {
  return source.kind === 'file' ? source.via : source.kind === 'env' ? 'POS_MASTER_KEY' : source.path;
}

/** Where the key came from, for messages (never the key). */
export function describeSource(source: MasterKeySource): string {
  switch (source.kind) {
    case 'env':
      return 'POS_MASTER_KEY';
    case 'file':
      return `${source.via} ${source.path}`;
    case 'data-dir':
    case 'generate':
      return source.path;
  }
}

/** `install` owner options naming this process's user and group (numeric), for the migration line. */
function ownerOptions(): string {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  return uid === undefined || gid === undefined ? '-o SERVICE_USER -g SERVICE_GROUP' : `-o ${uid} -g ${gid}`;
}

/**
 * Reads and parses the chosen key (everything but `generate`), printing the warnings its source calls
 * for. A string is the error line (a code, never the key).
 */
export function readMasterKey(
  choice: MasterKeyChoice & { readonly source: ReadableSource },
  env: NodeJS.ProcessEnv,
  warn: (line: string) => void,
): Uint8Array | string {
  const { source, dataDir, dev, ignored } = choice;
  if (ignored.length > 0)
    warn(
      `WARNING: more than one master key source is set (${[describeKind(source), ...ignored].join(', ')}): the key is taken from ${describeKind(source)}, the first in the order --master-key-file, POS_MASTER_KEY, POS_MASTER_KEY_FILE; unset ${ignored.join(' and ')}.`,
    );
  let text: string;
  switch (source.kind) {
    case 'env':
      text = env['POS_MASTER_KEY'] ?? '';
      break;
    case 'file':
    case 'data-dir': {
      const name = source.kind === 'file' ? `the ${source.via} file` : `the master key file ${source.path}`;
      const read = readSmallSecretFile(source.path, MAX_KEY_FILE_BYTES);
      if (!read.ok) return `POS_ERR_MASTER_KEY_INVALID: ${name} ${read.detail}`;
      text = read.text;
      if (othersMayAccess(read.mode)) warn(sharedSecretFileWarning(name, source.path));
      break;
    }
  }
  if (source.kind === 'data-dir') {
    if (dev) {
      warn(`WARNING: using the DEVELOPMENT master key in ${source.path}.`);
      warn(
        'WARNING: in production set POS_MASTER_KEY (base64url, 32 bytes) or --master-key-file, kept apart from the data directory.',
      );
    } else {
      warn(
        `WARNING: the master key is read from ${source.path}, INSIDE THE DATA DIRECTORY it protects (an earlier pos-backend generated it there without --dev): whoever copies the data directory, a backup for instance, has the key to its sealed signing keys too.`,
      );
      warn(
        `WARNING: move it out: install -D -m 0600 ${ownerOptions()} ${source.path} /etc/pos-backend/master.key (any path outside the data directory; -o/-g: the user and group this service runs as, so the copy stays readable to it when made as root), restart with --master-key-file /etc/pos-backend/master.key, then delete ${source.path}; docs/backend.md "Master key".`,
      );
    }
  } else if (source.kind === 'file' && isInside(source.path, dataDir)) {
    warn(
      `WARNING: the ${source.via} file is inside the data directory ${dataDir}: keep the master key apart from the data it protects (docs/backend.md "Master key").`,
    );
  } else if (!dev && existsSync(join(dataDir, DATA_DIR_MASTER_KEY_FILE))) {
    warn(
      `WARNING: ${join(dataDir, DATA_DIR_MASTER_KEY_FILE)} is still in the data directory although the master key comes from ${describeSource(source)}: delete it once the service starts with this key.`,
    );
  }
  const parsed = parseMasterKey(text);
  return parsed.ok ? parsed.key : `${parsed.code}: ${parsed.detail} (${describeSource(source)})`;
}

/**
 * `--dev` with no key: writes a new development key to `<data dir>/master.key` (0600, never over a
 * file) unless the store already has one (`storeHasKey`), in which case the error line says what to do.
 */
export function generateDevMasterKey(
  path: string,
  storeHasKey: boolean,
  warn: (line: string) => void,
): Uint8Array | string {
  if (storeHasKey)
    return `POS_ERR_MASTER_KEY_INVALID: the store already has a master key but ${path} is missing: restore that file, or pass the store's key with POS_MASTER_KEY or --master-key-file (a new key would not open the stored signing keys)`;
  const text = generateMasterKeyText();
  const written = writeNewSecretFile(path, `${text}\n`);
  if (!written.ok)
    return `POS_ERR_MASTER_KEY_INVALID: the development master key cannot be written to ${path} (${written.errno})`;
  warn(`WARNING: generated a DEVELOPMENT master key in ${path}.`);
  warn(
    'WARNING: in production set POS_MASTER_KEY (base64url, 32 bytes) or --master-key-file, kept apart from the data directory.',
  );
  const parsed = parseMasterKey(text);
  return parsed.ok ? parsed.key : `${parsed.code}: ${parsed.detail}`;
}

const MasterKeyCommandSchema = z.strictObject({
  out: z.string().min(1).max(4096).optional(),
  help: z.boolean().optional(),
});

interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** `pos-backend master-key [--out FILE]`: a new key on stdout, or in FILE (0600, never overwritten). */
export function runMasterKeyCommand(argv: readonly string[], io: Io): number {
  let values: unknown;
  try {
    const parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    values = parsed.values;
  } catch (e) {
    const detail = e instanceof Error ? (e.message.split('\n')[0] ?? 'bad arguments') : 'bad arguments';
    io.err(`pos-backend: POS_ERR_CLI_USAGE: master-key: ${detail}`);
    io.err(`Usage:\n${MASTER_KEY_USAGE}`);
    return 2;
  }
  const options = MasterKeyCommandSchema.safeParse(values);
  if (!options.success) {
    io.err('pos-backend: POS_ERR_CLI_USAGE: master-key: --out takes a file path');
    return 2;
  }
  if (options.data.help === true) {
    io.out(`Usage:\n${MASTER_KEY_USAGE}`);
    return 0;
  }
  const key = generateMasterKeyText();
  const out = options.data.out;
  if (out === undefined) {
    io.out(key);
  } else {
    const path = resolve(out);
    const written = writeNewSecretFile(path, `${key}\n`);
    if (!written.ok) {
      io.err(
        written.errno === 'EEXIST'
          ? `pos-backend: POS_ERR_CLI_USAGE: master-key: ${path} already exists (a master key file is never overwritten)`
          : `pos-backend: POS_ERR_CLI_USAGE: master-key: ${path} cannot be written (${written.errno}); nothing was left there`,
      );
      return 2;
    }
    io.err(`Wrote a new master key to ${path} (mode 0600).`);
    if (process.getuid?.() === 0)
      io.err(
        `It belongs to root: give it to the user the service runs as (chown pos:pos ${path}, with that user and group), or the service cannot read it.`,
      );
  }
  io.err(
    'Keep it outside the data directory and back it up apart from the data: without it the store cannot be opened. Start with --master-key-file FILE or env POS_MASTER_KEY.',
  );
  return 0;
}
