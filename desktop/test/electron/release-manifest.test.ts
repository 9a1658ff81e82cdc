import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPackage } from '@electron/asar';
import { ReferenceValuesBody } from '@pos/backend/server/routes/operator';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { appCodeHash } from '../../src/core/attest/collectors/app-code';
import { electronFuses } from '../../src/core/attest/collectors/fuses';
import { executableHash } from '../../src/core/attest/collectors/executable';
import { nodeAttestFs, nodeAttestProcess } from '../../src/core/attest/node-host';
import type { ShellInfo } from '../../src/core/attest/types';
import { afterPack, readWireOf } from '../../scripts/after-pack';
import { expectedFuseWire } from '../../scripts/fuses';
import { main, parseManifestArgs, releaseManifest } from '../../scripts/release-manifest';

let root: string;
let appDir: string;
let asar: string;
let exe: string;
const fs = nodeAttestFs();
const proc = nodeAttestProcess();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'pos-release-'));
  appDir = join(root, 'app');
  mkdirSync(join(appDir, 'electron'), { recursive: true });
  mkdirSync(join(appDir, 'renderer', 'assets'), { recursive: true });
  writeFileSync(join(appDir, 'package.json'), '{"name":"pos-terminal","main":"electron/main.mjs"}');
  writeFileSync(join(appDir, 'electron', 'main.mjs'), 'console.log("main")');
  writeFileSync(join(appDir, 'renderer', 'index.html'), '<!doctype html>');
  writeFileSync(join(appDir, 'renderer', 'assets', 'a.js'), 'export {}');
  symlinkSync('a.js', join(appDir, 'renderer', 'assets', 'b.js'));
  asar = join(root, 'app.asar');
  await createPackage(appDir, asar);
  // A packaged executable: Electron's shipped wire, then flipped by the afterPack hook as a build does.
  mkdirSync(join(root, 'out'));
  exe = join(root, 'out', 'pos-terminal');
  writeFileSync(
    exe,
    Buffer.concat([
      Buffer.alloc(1000, 7),
      Buffer.from('dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX'),
      Buffer.from([1, 9]),
      Buffer.from('110110101'),
      Buffer.alloc(100, 8),
    ]),
  );
  await afterPack(
    {
      appOutDir: join(root, 'out'),
      electronPlatformName: 'linux',
      arch: 1,
      packager: { appInfo: { productFilename: 'POS Terminal' }, executableName: 'pos-terminal' },
    },
    {
      flip: (p, c) => import('@electron/fuses').then((m) => m.flipFuses(p, c)),
      readWire: readWireOf,
      log: () => undefined,
    },
  );
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('release manifest', () => {
  it('of an app directory: the code hash is what the terminal measures for it (sha256:tree), and it parses with the back-end schema', async () => {
    const r = await releaseManifest({
      source: { appDir },
      version: '1.2.3',
      build: 'development',
      exes: [],
      shells: ['electron', 'browser'],
    });
    if (!r.ok) throw new Error(r.detail);
    const shell: ShellInfo = {
      kind: 'electron',
      build: 'development',
      version: '1.2.3',
      packaged: false,
      appPath: appDir,
    };
    const measured = await appCodeHash({ fs, proc, shell });
    expect(measured.method).toBe('sha256:tree');
    expect(r.manifest).toEqual({
      version: '1.2.3',
      build: 'development',
      codeHashes: [measured.value],
      allowedShells: ['electron', 'browser'],
    });
    expect(ReferenceValuesBody.parse(r.manifest)).toEqual(r.manifest);
  });

  it('of an app.asar with its executable: code hash, fuse wire and executable hash equal what the packaged app reports', async () => {
    const r = await releaseManifest({
      source: { asar },
      version: '1.2.3',
      build: 'release',
      exes: [exe],
      shells: ['electron'],
    });
    if (!r.ok) throw new Error(r.detail);
    const shell: ShellInfo = {
      kind: 'electron',
      build: 'release',
      version: '1.2.3',
      packaged: true,
      appPath: asar,
      asarPath: asar,
    };
    const app = { fs, proc: { ...proc, execPath: exe }, shell };
    const [code, fuses, exeHash] = await Promise.all([
      appCodeHash(app),
      electronFuses(app),
      executableHash(app),
    ]);
    expect(code).toMatchObject({ status: 'ok', method: 'sha256:asar' });
    expect(code.value).toBe(createHash('sha256').update(readFileSync(asar)).digest('hex'));
    expect(r.manifest).toEqual({
      version: '1.2.3',
      build: 'release',
      codeHashes: [code.value],
      fuseWire: fuses.value,
      executableHashes: [exeHash.value],
      allowedShells: ['electron'],
    });
    expect(fuses.value).toBe(expectedFuseWire());
    expect(ReferenceValuesBody.parse(r.manifest)).toEqual(r.manifest);
  });

  it('without --exe an asar release records the wire the afterPack hook writes and checks', async () => {
    const r = await releaseManifest({
      source: { asar },
      version: '1.2.3',
      build: 'release',
      exes: [],
      shells: ['electron'],
    });
    expect(r.ok && r.manifest.fuseWire).toBe(expectedFuseWire());
  });

  it('changing one byte of the app changes the code hash', async () => {
    const before = await releaseManifest({
      source: { appDir },
      version: '1',
      build: 'development',
      exes: [],
      shells: ['headless'],
    });
    writeFileSync(join(appDir, 'renderer', 'assets', 'a.js'), 'export {};');
    const after = await releaseManifest({
      source: { appDir },
      version: '1',
      build: 'development',
      exes: [],
      shells: ['headless'],
    });
    expect(before.ok && after.ok && before.manifest.codeHashes[0] !== after.manifest.codeHashes[0]).toBe(
      true,
    );
  });

  it('refuses an executable whose fuses were not flipped by this build, and one with no fuse wire', async () => {
    const plain = join(root, 'plain');
    writeFileSync(
      plain,
      Buffer.concat([
        Buffer.from('dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX'),
        Buffer.from([1, 9]),
        Buffer.from('110110101'),
      ]),
    );
    const r = await releaseManifest({
      source: { asar },
      version: '1',
      build: 'release',
      exes: [plain],
      shells: ['electron'],
    });
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_RELEASE_MANIFEST' });
    expect(!r.ok && r.detail).toMatch(/1:110110101.*not the one this build writes/);
    const none = join(root, 'none');
    writeFileSync(none, 'no sentinel here');
    expect(
      await releaseManifest({
        source: { asar },
        version: '1',
        build: 'release',
        exes: [none],
        shells: ['electron'],
      }),
    ).toMatchObject({ ok: false });
  });

  it('refuses a missing asar and a version the back-end would refuse', async () => {
    expect(
      await releaseManifest({
        source: { asar: join(root, 'missing.asar') },
        version: '1',
        build: 'release',
        exes: [],
        shells: ['electron'],
      }),
    ).toMatchObject({ ok: false });
    expect(
      await releaseManifest({
        source: { appDir },
        version: 'bad version!',
        build: 'development',
        exes: [],
        shells: ['electron'],
      }),
    ).toMatchObject({ ok: false });
  });

  it('parses its arguments', () => {
    expect(parseManifestArgs(['--asar', 'a.asar', '--version', '1.0.0'])).toEqual({
      ok: true,
      args: {
        source: { asar: 'a.asar' },
        version: '1.0.0',
        build: 'release',
        exes: [],
        shells: ['electron'],
      },
    });
    expect(
      parseManifestArgs([
        '--app-dir',
        'd',
        '--version',
        '1',
        '--shell',
        'headless',
        '--shell',
        'browser',
        '--exe',
        'x',
        '--out',
        'o.json',
      ]),
    ).toMatchObject({
      ok: true,
      args: {
        source: { appDir: 'd' },
        build: 'development',
        exes: ['x'],
        shells: ['headless', 'browser'],
        out: 'o.json',
      },
    });
    for (const bad of [
      [],
      ['--asar', 'a', '--app-dir', 'd', '--version', '1'],
      ['--asar', 'a'],
      ['--asar'],
      ['--asar', 'a', '--version', '1', '--shell', 'x'],
      ['--nope'],
    ])
      expect(parseManifestArgs(bad).ok, bad.join(' ')).toBe(false);
  });

  it('the command writes the JSON an operator uploads and prints the curl line', async () => {
    const out = join(root, 'manifest.json');
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const code = await main(['--asar', asar, '--version', '1.2.3', '--exe', exe, '--out', out]);
    const lines = err.mock.calls.map((c) => String(c[0]));
    err.mockRestore();
    expect(code).toBe(0);
    expect(ReferenceValuesBody.parse(JSON.parse(readFileSync(out, 'utf8')))).toMatchObject({
      version: '1.2.3',
      fuseWire: expectedFuseWire(),
    });
    expect(lines.join('\n')).toMatch(/curl .*\/v1\/reference-values.*@/);
  });
});
