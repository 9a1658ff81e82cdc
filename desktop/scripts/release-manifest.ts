/**
 * `npm run release-manifest -w desktop -- (--asar PATH | --app-dir DIR) --version V [--build
 * release|development] [--exe PATH]... [--shell electron|browser|headless]... [--out FILE]`
 *
 * The reference values of one release, as the back-end stores them (`POST /v1/reference-values`, body
 * `ReferenceValuesBody` of @pos/backend): measured with the terminal's own collectors, so the code
 * hash is byte for byte what the packaged app reports:
 *
 * - `codeHashes`: `--asar`: the SHA-256 of app.asar (`sha256:asar`, what a packaged app measures);
 *   `--app-dir`: the tree hash of the directory (`sha256:tree`, development and headless runs).
 * - `fuseWire` (electron releases from an asar): read from the first `--exe` with the terminal's fuse
 *   reader; without `--exe`, the wire the afterPack hook writes and checks (`expectedFuseWire()`). An
 *   executable whose wire differs from the table is refused: that binary was not packaged by this
 *   build.
 * - `executableHashes`: the SHA-256 of each `--exe` (the file the terminal's process runs: the app
 *   executable on Linux and Windows; on macOS the utility process runs the helper executable).
 * - `allowedShells`: `--shell`, default `electron`.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ReferenceValuesBody } from '@pos/backend/server/routes/operator';
import { appCodeHash } from '../src/core/attest/collectors/app-code';
import { executableHash } from '../src/core/attest/collectors/executable';
import { electronFuses } from '../src/core/attest/collectors/fuses';
import { nodeAttestFs, nodeAttestProcess } from '../src/core/attest/node-host';
import type { AttestFs, AttestProcess, ShellInfo } from '../src/core/attest/types';
import { expectedFuseWire } from './fuses';

export type ReleaseManifest = z.infer<typeof ReferenceValuesBody>;

export interface ManifestArgs {
  readonly source: { readonly asar: string } | { readonly appDir: string };
  readonly version: string;
  readonly build: 'release' | 'development';
  readonly exes: readonly string[];
  readonly shells: readonly ('electron' | 'browser' | 'headless')[];
  readonly out?: string;
}

type Failure = { ok: false; code: 'POS_ERR_DESKTOP_RELEASE_MANIFEST'; detail: string };
const failure = (detail: string): Failure => ({
  ok: false,
  code: 'POS_ERR_DESKTOP_RELEASE_MANIFEST',
  detail,
});

const ShellArg = z.enum(['electron', 'browser', 'headless']);

export function parseManifestArgs(argv: readonly string[]): { ok: true; args: ManifestArgs } | Failure {
  let asar: string | undefined;
  let appDir: string | undefined;
  let version: string | undefined;
  let build: string | undefined;
  let out: string | undefined;
  const exes: string[] = [];
  const shells: ('electron' | 'browser' | 'headless')[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const takes = ['--asar', '--app-dir', '--version', '--build', '--exe', '--shell', '--out'];
    if (flag === undefined || !takes.includes(flag)) return failure(`unknown argument ${flag ?? ''}`);
    if (value === undefined || value.startsWith('--')) return failure(`${flag} needs a value`);
    i++;
    if (flag === '--asar') asar = value;
    else if (flag === '--app-dir') appDir = value;
    else if (flag === '--version') version = value;
    else if (flag === '--build') build = value;
    else if (flag === '--out') out = value;
    else if (flag === '--exe') exes.push(value);
    else {
      const s = ShellArg.safeParse(value);
      if (!s.success) return failure(`--shell must be electron, browser or headless`);
      if (!shells.includes(s.data)) shells.push(s.data);
    }
  }
  if ((asar === undefined) === (appDir === undefined))
    return failure('give exactly one of --asar PATH or --app-dir DIR');
  if (version === undefined) return failure('--version is required');
  const b = build ?? (asar !== undefined ? 'release' : 'development');
  if (b !== 'release' && b !== 'development') return failure('--build must be release or development');
  return {
    ok: true,
    args: {
      source: asar !== undefined ? { asar } : { appDir: appDir ?? '' },
      version,
      build: b,
      exes,
      shells: shells.length > 0 ? shells : ['electron'],
      ...(out === undefined ? {} : { out }),
    },
  };
}

export interface ManifestDeps {
  readonly fs: AttestFs;
  readonly proc: AttestProcess;
}

/** The release's reference values, measured with the terminal's collectors and checked with the back-end's schema. */
export async function releaseManifest(
  args: ManifestArgs,
  deps: ManifestDeps = { fs: nodeAttestFs(), proc: nodeAttestProcess() },
): Promise<{ ok: true; manifest: ReleaseManifest } | Failure> {
  const packaged = 'asar' in args.source;
  const path = 'asar' in args.source ? args.source.asar : args.source.appDir;
  const shell: ShellInfo = {
    kind: 'electron',
    build: args.build,
    version: args.version,
    packaged,
    appPath: path,
    ...(packaged ? { asarPath: path } : {}),
  };
  const code = await appCodeHash({ fs: deps.fs, proc: deps.proc, shell });
  if (code.status !== 'ok' || typeof code.value !== 'string')
    return failure(`cannot hash ${path}: ${typeof code.value === 'string' ? code.value : 'unreadable'}`);

  const executableHashes: string[] = [];
  let measuredWire: string | undefined;
  for (const exe of args.exes) {
    const proc = { ...deps.proc, execPath: exe };
    const h = await executableHash({ fs: deps.fs, proc, shell });
    if (h.status !== 'ok' || typeof h.value !== 'string') return failure(`cannot hash the executable ${exe}`);
    executableHashes.push(h.value);
    if (measuredWire === undefined && packaged) {
      const w = await electronFuses({ fs: deps.fs, proc, shell });
      if (w.status === 'ok' && typeof w.value === 'string') measuredWire = w.value;
    }
  }

  let fuseWire: string | undefined;
  if (packaged && args.shells.includes('electron')) {
    const table = expectedFuseWire();
    if (args.exes.length > 0 && measuredWire === undefined)
      return failure('no --exe has an Electron fuse wire (give the packaged app executable)');
    if (measuredWire !== undefined && measuredWire !== table)
      return failure(
        `the executable's fuse wire ${measuredWire} is not the one this build writes (${table}): it was not packaged by npm run package`,
      );
    fuseWire = table;
  }

  const manifest = {
    version: args.version,
    build: args.build,
    codeHashes: [code.value],
    ...(fuseWire === undefined ? {} : { fuseWire }),
    ...(executableHashes.length === 0 ? {} : { executableHashes }),
    allowedShells: [...args.shells],
  };
  const parsed = ReferenceValuesBody.safeParse(manifest);
  if (!parsed.success)
    return failure(
      `the manifest does not fit the back-end's schema: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  return { ok: true, manifest: parsed.data };
}

export async function main(argv: readonly string[]): Promise<number> {
  const a = parseManifestArgs(argv);
  if (!a.ok) {
    console.error(`${a.code}: ${a.detail}`);
    return 2;
  }
  const r = await releaseManifest(a.args);
  if (!r.ok) {
    console.error(`${r.code}: ${r.detail}`);
    return 1;
  }
  const json = `${JSON.stringify(r.manifest, null, 2)}\n`;
  if (a.args.out === undefined) process.stdout.write(json);
  else {
    writeFileSync(a.args.out, json, { mode: 0o644 });
    console.error(`wrote ${a.args.out}; upload it as this release's reference values:`);
    console.error(
      `  curl -fsS -X POST "$POS_BACKEND/v1/reference-values" -H "Authorization: Bearer $POS_OPERATOR_TOKEN" -H 'Content-Type: application/json' --data-binary @${a.args.out}`,
    );
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href)
  process.exitCode = await main(process.argv.slice(2));
