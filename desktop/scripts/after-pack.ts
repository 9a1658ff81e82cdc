/**
 * electron-builder's `afterPack` hook (loaded through after-pack.mjs): flips the Electron fuses of the
 * packaged binary exactly as FUSE_DECISIONS says, strictly (every fuse of the binary set, or
 * @electron/fuses throws), then reads the wire back with the terminal's own fuse reader and checks it
 * equals `expectedFuseWire()` — the value the release manifest records. It refuses to run when the
 * installed @electron/fuses has a fuse the table does not decide. Runs after electron-builder has
 * embedded the asar integrity hash (macOS Info.plist, Windows resource) and before code signing, so
 * the signature covers the flipped fuses.
 */
import { join } from 'node:path';
import { flipFuses, pathToFuseFile, type FuseV1Config } from '@electron/fuses';
import { readFuseWire } from '../src/core/attest/collectors/fuses';
import { nodeAttestFs } from '../src/core/attest/node-host';
import { assertFuseTableComplete, expectedFuseWire, fuseConfig } from './fuses';

/** The parts of electron-builder's AfterPackContext the hook reads. */
export interface AfterPackContextLike {
  readonly appOutDir: string;
  readonly electronPlatformName: string;
  /** electron-builder's Arch enum: 3 is arm64, 4 universal. */
  readonly arch: number;
  readonly packager: {
    readonly appInfo: { readonly productFilename: string };
    /** Linux packagers only. */
    readonly executableName?: string;
  };
}

/** The path @electron/fuses takes: the .app bundle (macOS), the .exe (Windows), the executable (Linux). */
export function electronBinaryPath(ctx: AfterPackContextLike): string {
  const name = ctx.packager.appInfo.productFilename;
  switch (ctx.electronPlatformName) {
    case 'darwin':
    case 'mas':
      return join(ctx.appOutDir, `${name}.app`);
    case 'win32':
      return join(ctx.appOutDir, `${name}.exe`);
    case 'linux':
      return join(ctx.appOutDir, ctx.packager.executableName ?? name);
    default:
      throw new Error(`afterPack: unknown platform ${ctx.electronPlatformName}`);
  }
}

/** The wire as the terminal's collector reads it from a file, `<version>:<fuses>`. */
export async function readWireOf(file: string): Promise<string> {
  const r = await readFuseWire(nodeAttestFs().chunks(file));
  if (!r.found) throw new Error(`afterPack: no fuse sentinel in ${file}`);
  if ('truncated' in r) throw new Error(`afterPack: the fuse wire in ${file} is cut short`);
  const chars: Record<number, string> = { 0x30: '0', 0x31: '1', 0x72: 'r' };
  return `${r.version}:${[...r.wire].map((b) => chars[b] ?? '?').join('')}`;
}

export interface AfterPackDeps {
  flip: (path: string, config: FuseV1Config) => Promise<number>;
  readWire: (file: string) => Promise<string>;
  log: (line: string) => void;
}

const defaultDeps: AfterPackDeps = {
  flip: flipFuses,
  readWire: readWireOf,
  log: (line) => console.log(`  • ${line}`),
};

export async function afterPack(ctx: AfterPackContextLike, deps: AfterPackDeps = defaultDeps): Promise<void> {
  // Before touching the binary: a fuse nobody decided stops the build.
  assertFuseTableComplete();
  const binary = electronBinaryPath(ctx);
  const darwin = ctx.electronPlatformName === 'darwin' || ctx.electronPlatformName === 'mas';
  const config = fuseConfig({ resetAdHocDarwinSignature: darwin && (ctx.arch === 3 || ctx.arch === 4) });
  deps.log(`flipping Electron fuses in ${binary}`);
  await deps.flip(binary, config);
  const expected = expectedFuseWire();
  const actual = await deps.readWire(pathToFuseFile(binary));
  if (actual !== expected)
    throw new Error(
      `afterPack: the fuse wire read back is ${actual}, expected ${expected} (a fuse removed or unknown to @electron/fuses?)`,
    );
  deps.log(`fuse wire ${actual} (as the release manifest records it)`);
}

export default afterPack;
