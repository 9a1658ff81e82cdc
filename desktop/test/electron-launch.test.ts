/**
 * `npm start`'s shell choice and Electron detection (desktop/scripts/electron-launch.mjs), under
 * plain Node with a fake filesystem; and, where a binary really is present, that it is found. The
 * launch itself needs the binary: not run here.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseShell, detectElectron, electronCommand } from '../scripts/electron-launch.mjs';

const dir = '/repo/node_modules/electron';
const fsWith = (files: Record<string, string>) => ({
  exists: (p: string) => p in files,
  read: (p: string) => {
    const t = files[p];
    if (t === undefined) throw new Error('ENOENT');
    return t;
  },
});

describe('detectElectron', () => {
  it('no path.txt (the binary was never downloaded, as here): not found, with the reason', () => {
    const r = detectElectron({ env: {}, electronDir: dir, ...fsWith({ [`${dir}/package.json`]: '{}' }) });
    expect(r).toMatchObject({ found: false });
    expect(!r.found && r.why).toContain('path.txt');
  });

  it('path.txt and dist/ present: the executable', () => {
    const files = {
      [`${dir}/package.json`]: '{}',
      [`${dir}/path.txt`]: 'electron\n',
      [`${dir}/dist/electron`]: '',
    };
    expect(detectElectron({ env: {}, electronDir: dir, ...fsWith(files) })).toEqual({
      found: true,
      executable: join(dir, 'dist', 'electron'),
    });
    // path.txt names a file dist/ does not have.
    const { [`${dir}/dist/electron`]: _gone, ...noDist } = files;
    expect(detectElectron({ env: {}, electronDir: dir, ...fsWith(noDist) })).toMatchObject({ found: false });
    // ELECTRON_OVERRIDE_DIST_PATH moves dist.
    expect(
      detectElectron({
        env: { ELECTRON_OVERRIDE_DIST_PATH: '/opt/e' },
        electronDir: dir,
        ...fsWith({ ...noDist, '/opt/e/electron': '' }),
      }),
    ).toEqual({ found: true, executable: '/opt/e/electron' });
  });

  it('POS_ELECTRON_BINARY wins, and must be an existing absolute path', () => {
    const f = fsWith({ '/usr/lib/electron/electron': '' });
    expect(
      detectElectron({ env: { POS_ELECTRON_BINARY: '/usr/lib/electron/electron' }, electronDir: dir, ...f }),
    ).toEqual({
      found: true,
      executable: '/usr/lib/electron/electron',
    });
    expect(detectElectron({ env: { POS_ELECTRON_BINARY: '/nope' }, electronDir: dir, ...f })).toMatchObject({
      found: false,
    });
    expect(
      detectElectron({ env: { POS_ELECTRON_BINARY: 'electron' }, electronDir: dir, ...f }),
    ).toMatchObject({ found: false });
  });

  it('the real node_modules/electron of this checkout, with the real filesystem', () => {
    const r = detectElectron({
      env: {},
      electronDir: join(__dirname, '..', '..', 'node_modules', 'electron'),
    });
    if (!r.found) console.log(`no Electron binary here (${r.why}): npm start runs the browser shell`);
    expect(typeof r.found).toBe('boolean');
  });
});

describe('chooseShell', () => {
  const yes = { found: true };
  const no = { found: false, why: 'no binary' };
  it('default: Electron where present, else the browser shell (saying why)', () => {
    expect(chooseShell({ electron: yes })).toMatchObject({ ok: true, shell: 'electron' });
    expect(chooseShell({ electron: no })).toEqual({
      ok: true,
      shell: 'browser',
      why: 'no Electron binary: no binary',
    });
  });
  it('explicit choices, and refusals', () => {
    expect(chooseShell({ shell: 'browser', electron: yes })).toMatchObject({ shell: 'browser' });
    expect(chooseShell({ headless: true, electron: yes })).toMatchObject({ shell: 'headless' });
    expect(chooseShell({ shell: 'headless', electron: yes })).toMatchObject({ shell: 'headless' });
    expect(chooseShell({ shell: 'electron', electron: yes })).toMatchObject({ shell: 'electron' });
    expect(chooseShell({ shell: 'electron', electron: no })).toMatchObject({ ok: false });
    expect(chooseShell({ shell: 'qt', electron: yes })).toMatchObject({ ok: false });
    expect(chooseShell({ shell: 'browser', headless: true, electron: yes })).toMatchObject({ ok: false });
  });
});

describe('electronCommand', () => {
  it('runs the main bundle with the data directory, never as Node', () => {
    const c = electronCommand({
      executable: '/e/electron',
      mainBundle: '/repo/desktop/dist/electron/main.mjs',
      dataDir: '/data/terminal',
      env: { PATH: '/bin', ELECTRON_RUN_AS_NODE: '1' },
    });
    expect(c).toEqual({
      command: '/e/electron',
      args: ['/repo/desktop/dist/electron/main.mjs'],
      env: { PATH: '/bin', POS_TERMINAL_DATA_DIR: '/data/terminal' },
    });
  });
});
