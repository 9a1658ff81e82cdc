import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleElectron, DESKTOP_DIR } from '../../scripts/build-electron';
import { findElectronBinary } from '../../scripts/electron-binary';
import { parsePackageArgs, preflight } from '../../scripts/package';

interface BuilderConfig {
  asar: boolean;
  asarUnpack: string[];
  afterPack: string;
  directories: { app: string };
  linux: { target: string[] };
  win: { target: string[] };
  mac: { target: string[] };
  electronFuses?: unknown;
}

describe('electron-builder configuration', () => {
  let config: BuilderConfig;
  beforeAll(async () => {
    // A JavaScript module (electron-builder loads it as is): imported by URL, typed here.
    const url = pathToFileURL(join(DESKTOP_DIR, 'electron-builder.config.mjs')).href;
    config = ((await import(url)) as { default: BuilderConfig }).default;
  });
  it('asar on, the native reader modules unpacked, Linux/Windows/macOS targets', () => {
    expect(config.asar).toBe(true);
    expect(config.asarUnpack).toEqual(
      expect.arrayContaining([
        'node_modules/@serialport/bindings-cpp/**',
        'node_modules/node-hid/**',
        'node_modules/**/*.node',
      ]),
    );
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.win.target).toEqual(['nsis']);
    expect(config.mac.target).toEqual(['dmg']);
  });
  it('fuses come from the afterPack hook (the decision table), not from electronFuses', () => {
    expect(config.electronFuses).toBeUndefined();
    expect(existsSync(join(DESKTOP_DIR, config.afterPack))).toBe(true);
    expect(readFileSync(join(DESKTOP_DIR, config.afterPack), 'utf8')).toContain("import('./after-pack.ts')");
  });
});

describe('the afterPack hook module electron-builder loads', () => {
  it('loads under plain Node (the TypeScript hook through tsx) and exports the hook', () => {
    const url = pathToFileURL(join(DESKTOP_DIR, 'scripts', 'after-pack-hook.mjs')).href;
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(url)}); console.log(typeof m.afterPack, typeof m.default);`,
      ],
      { encoding: 'utf8', timeout: 60_000, cwd: DESKTOP_DIR },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function function');
  });
});

describe('npm run package', () => {
  it('without the Electron binary it stops first, with a code and the reason', () => {
    const r = preflight({ found: false, why: 'the Electron binary is not installed (path.txt is missing)' });
    expect(r?.code).toBe('POS_ERR_DESKTOP_PACKAGE_NO_ELECTRON');
    expect(r?.message).toMatch(/not installed/);
    expect(preflight({ found: true, executable: '/e/electron', distDir: '/e' })).toBeUndefined();
  });
  it('finds no binary where node_modules/electron has no path.txt', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-electron-pkg-'));
    try {
      expect(findElectronBinary({}, dir)).toMatchObject({ found: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('parses its platform flags', () => {
    expect(parsePackageArgs([], 'linux')).toEqual({ platform: 'linux', dirOnly: false });
    expect(parsePackageArgs(['--win', '--dir'], 'linux')).toEqual({ platform: 'win', dirOnly: true });
    expect(parsePackageArgs([], 'darwin')).toEqual({ platform: 'mac', dirOnly: false });
    expect(typeof parsePackageArgs(['--all'])).toBe('string');
  });
});

describe('the bundles', () => {
  let out: string;
  let dir: string;
  beforeAll(async () => {
    // Under desktop/dist (git-ignored), so the bundles resolve the workspace's node_modules.
    mkdirSync(join(DESKTOP_DIR, 'dist'), { recursive: true });
    out = mkdtempSync(join(DESKTOP_DIR, 'dist', 'test-bundle-'));
    dir = await bundleElectron(DESKTOP_DIR, out);
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const requires = (file: string): string[] =>
    [
      ...readFileSync(join(dir, file), 'utf8').matchAll(
        /\brequire\d*\("([^"]+)"\)|\bfrom "([^"]+)"|\bimport\("([^"]+)"\)/g,
      ),
    ]
      .map((m) => m[1] ?? m[2] ?? m[3] ?? '')
      .filter((s, i, all) => all.indexOf(s) === i)
      .sort();

  it('the sandboxed preload requires nothing but electron (everything else is inlined)', () => {
    expect(requires('preload.cjs')).toEqual(['electron']);
  });
  it('the utility process never imports electron; the native reader modules stay external', () => {
    const deps = requires('core-process.cjs');
    expect(deps).not.toContain('electron');
    expect(deps).toContain('serialport');
    expect(deps).toContain('node-hid');
    expect(deps.filter((d) => d.startsWith('@pos/'))).toEqual([]);
  });
  it('the utility bundle loads under plain Node (no top-level await, no import.meta) and refuses to run outside a utility process', () => {
    const r = spawnSync(process.execPath, [join(dir, 'core-process.cjs')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toContain('not started as an Electron utility process');
    expect(r.status).toBe(2);
  });

  it('the main process imports electron and Node built-ins only', () => {
    const deps = requires('main.mjs');
    expect(deps).toContain('electron');
    expect(deps.filter((d) => d !== 'electron' && !d.startsWith('node:'))).toEqual([]);
  });
});
