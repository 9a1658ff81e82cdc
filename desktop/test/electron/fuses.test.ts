import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseV1Options, FuseVersion, type FuseV1Config } from '@electron/fuses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { electronFuses } from '../../src/core/attest/collectors/fuses';
import { nodeAttestFs, nodeAttestProcess } from '../../src/core/attest/node-host';
import {
  afterPack,
  electronBinaryPath,
  readWireOf,
  type AfterPackContextLike,
} from '../../scripts/after-pack';
import {
  assertFuseTableComplete,
  expectedFuseWire,
  FUSE_DECISIONS,
  fuseConfig,
  installedFuses,
  undecidedFuses,
} from '../../scripts/fuses';

describe('the fuse decision table', () => {
  it('decides every fuse the installed @electron/fuses knows, and no other (an Electron upgrade with a new fuse fails here)', () => {
    expect(undecidedFuses()).toEqual([]);
    expect(Object.keys(FUSE_DECISIONS).sort()).toEqual([...installedFuses().keys()].sort());
    expect(() => assertFuseTableComplete()).not.toThrow();
  });

  it('says why for each fuse', () => {
    for (const [name, d] of Object.entries(FUSE_DECISIONS)) expect(d.why.length, name).toBeGreaterThan(40);
  });

  it('sets the issue’s fuses as required', () => {
    expect(FUSE_DECISIONS.RunAsNode.enabled).toBe(false);
    expect(FUSE_DECISIONS.EnableNodeOptionsEnvironmentVariable.enabled).toBe(false);
    expect(FUSE_DECISIONS.EnableNodeCliInspectArguments.enabled).toBe(false);
    expect(FUSE_DECISIONS.EnableEmbeddedAsarIntegrityValidation.enabled).toBe(true);
    expect(FUSE_DECISIONS.OnlyLoadAppFromAsar.enabled).toBe(true);
    expect(FUSE_DECISIONS.GrantFileProtocolExtraPrivileges.enabled).toBe(false);
    expect(FUSE_DECISIONS.EnableCookieEncryption.enabled).toBe(true);
  });

  it('a new fuse in @electron/fuses is reported by name and stops the config', () => {
    const withNew = { ...FuseV1Options, FutureFuse: 9, 9: 'FutureFuse' };
    expect(undecidedFuses(withNew)).toEqual(['FutureFuse']);
    expect(() => assertFuseTableComplete(withNew)).toThrow(/FutureFuse/);
    expect(() => expectedFuseWire(withNew)).toThrow(/nobody decided/);
  });

  it('the config sets every fuse explicitly and strictly', () => {
    const c = fuseConfig({ resetAdHocDarwinSignature: false }) as FuseV1Config & Record<number, boolean>;
    expect(c.version).toBe(FuseVersion.V1);
    expect(c.strictlyRequireAllFuses).toBe(true);
    for (const [name, index] of installedFuses())
      expect(c[index], name).toBe(FUSE_DECISIONS[name as keyof typeof FUSE_DECISIONS].enabled);
  });

  it('the expected wire is version 1 and one digit per fuse in index order', () => {
    expect(expectedFuseWire()).toBe('1:010011001');
  });
});

/** A fake Electron binary: some bytes, the sentinel, version 1, the wire as Electron ships it (all on but the V8 snapshot fuses). */
function fakeBinary(dir: string, name: string, wire = '110110101'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    Buffer.concat([
      Buffer.alloc(5000, 0x41),
      Buffer.from('dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX'),
      Buffer.from([1, wire.length]),
      Buffer.from(wire),
      Buffer.alloc(300, 0x42),
    ]),
    { mode: 0o755 },
  );
  return path;
}

describe('afterPack', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pos-afterpack-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ctx = (platform: string, arch = 1): AfterPackContextLike => ({
    appOutDir: dir,
    electronPlatformName: platform,
    arch,
    packager: { appInfo: { productFilename: 'POS Terminal' }, executableName: 'pos-terminal' },
  });

  it('finds the binary per platform', () => {
    expect(electronBinaryPath(ctx('linux'))).toBe(join(dir, 'pos-terminal'));
    expect(electronBinaryPath(ctx('win32'))).toBe(join(dir, 'POS Terminal.exe'));
    expect(electronBinaryPath(ctx('darwin'))).toBe(join(dir, 'POS Terminal.app'));
  });

  it('flips the real fuses of a (fake) Linux binary with @electron/fuses, and the terminal then measures the manifest’s wire', async () => {
    const bin = fakeBinary(dir, 'pos-terminal');
    const logs: string[] = [];
    await afterPack(ctx('linux'), {
      flip: (p, c) => import('@electron/fuses').then((m) => m.flipFuses(p, c)),
      readWire: readWireOf,
      log: (l) => logs.push(l),
    });
    expect(await readWireOf(bin)).toBe(expectedFuseWire());
    const measured = await electronFuses({
      fs: nodeAttestFs(),
      proc: { ...nodeAttestProcess(), execPath: bin },
      shell: {
        kind: 'electron',
        build: 'release',
        version: '0.1.0',
        packaged: true,
        appPath: '/x',
        asarPath: '/x',
      },
    });
    expect(measured).toEqual({
      status: 'ok',
      method: 'electron-fuses:executable',
      value: expectedFuseWire(),
    });
  });

  it('refuses a binary whose wire is longer than the table (strict), and a wire that does not read back as expected', async () => {
    fakeBinary(dir, 'pos-terminal', '1101101011');
    await expect(
      afterPack(ctx('linux'), {
        flip: (p, c) => import('@electron/fuses').then((m) => m.flipFuses(p, c)),
        readWire: readWireOf,
        log: () => undefined,
      }),
    ).rejects.toThrow(/strictlyRequireAllFuses/);
    // A flip that did not take (the file read back is not what the table says): the build stops.
    fakeBinary(dir, 'pos-terminal');
    await expect(
      afterPack(ctx('linux'), {
        flip: () => Promise.resolve(1),
        readWire: readWireOf,
        log: () => undefined,
      }),
    ).rejects.toThrow(/read back is 1:110110101, expected 1:010011001/);
  });

  it('resets the ad-hoc signature on Apple silicon only', async () => {
    const seen: boolean[] = [];
    const deps = {
      flip: (_p: string, c: FuseV1Config) => {
        seen.push(c.resetAdHocDarwinSignature === true);
        return Promise.resolve(1);
      },
      readWire: () => Promise.resolve(expectedFuseWire()),
      log: () => undefined,
    };
    await afterPack(ctx('darwin', 3), deps);
    await afterPack(ctx('darwin', 1), deps);
    await afterPack(ctx('win32', 3), deps);
    expect(seen).toEqual([true, false, false]);
  });
});
