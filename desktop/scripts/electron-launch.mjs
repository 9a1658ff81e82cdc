// How `npm start` (scripts/start.mjs) chooses and launches the terminal's shell. Plain Node, no
// TypeScript and no `electron` import (the electron package's index.js tries to download the binary
// when it is missing): the binary is found from POS_ELECTRON_BINARY, or from the package's path.txt and
// dist/ (ELECTRON_OVERRIDE_DIST_PATH for another dist), as electron's own index.js does.
// Tested under plain Node in desktop/test/electron-launch.test.ts.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

/**
 * Where the Electron binary is.
 * @param {{ env?: Record<string, string | undefined>, electronDir: string, exists?: (p: string) => boolean, read?: (p: string) => string }} o
 * @returns {{ found: true, executable: string } | { found: false, why: string }}
 */
export function detectElectron({
  env = process.env,
  electronDir,
  exists = existsSync,
  read = (p) => readFileSync(p, 'utf8'),
}) {
  const explicit = env.POS_ELECTRON_BINARY;
  if (explicit !== undefined && explicit !== '') {
    if (!isAbsolute(explicit))
      return { found: false, why: `POS_ELECTRON_BINARY must be an absolute path (${explicit})` };
    return exists(explicit)
      ? { found: true, executable: explicit }
      : { found: false, why: `POS_ELECTRON_BINARY names ${explicit}, which does not exist` };
  }
  const pathFile = join(electronDir, 'path.txt');
  if (!exists(join(electronDir, 'package.json')))
    return { found: false, why: 'the electron package is not installed' };
  if (!exists(pathFile))
    return { found: false, why: `the Electron binary was not downloaded (${pathFile} is missing)` };
  let rel;
  try {
    rel = read(pathFile).trim();
  } catch {
    return { found: false, why: `${pathFile} cannot be read` };
  }
  if (rel === '' || rel.includes('\0')) return { found: false, why: `${pathFile} is empty` };
  const override = env.ELECTRON_OVERRIDE_DIST_PATH;
  const dist = override !== undefined && override !== '' ? override : join(electronDir, 'dist');
  const executable = join(dist, rel);
  return exists(executable)
    ? { found: true, executable }
    : { found: false, why: `the Electron binary ${executable} does not exist` };
}

/**
 * Which shell `npm start` runs: `--headless` or `--shell headless`; `--shell browser`; `--shell
 * electron` (refused when there is no binary); by default Electron where its binary is present,
 * otherwise the browser shell.
 * @param {{ shell?: string, headless?: boolean, electron: { found: boolean, why?: string } }} o
 * @returns {{ ok: true, shell: 'electron' | 'browser' | 'headless', why: string } | { ok: false, why: string }}
 */
export function chooseShell({ shell, headless, electron }) {
  if (shell !== undefined && !['electron', 'browser', 'headless'].includes(shell))
    return { ok: false, why: '--shell is electron, browser or headless' };
  if (headless === true && shell !== undefined && shell !== 'headless')
    return { ok: false, why: `--headless and --shell ${shell} contradict each other` };
  if (headless === true || shell === 'headless') return { ok: true, shell: 'headless', why: 'asked for' };
  if (shell === 'browser') return { ok: true, shell: 'browser', why: 'asked for' };
  if (shell === 'electron')
    return electron.found
      ? { ok: true, shell: 'electron', why: 'asked for' }
      : { ok: false, why: `--shell electron: ${electron.why ?? 'no Electron binary'}` };
  return electron.found
    ? { ok: true, shell: 'electron', why: 'its binary is present' }
    : { ok: true, shell: 'browser', why: `no Electron binary: ${electron.why ?? 'not found'}` };
}

/**
 * The command that starts the development Electron app on the terminal's data directory. The main
 * process honours POS_TERMINAL_DATA_DIR only when not packaged (a development build).
 * @param {{ executable: string, mainBundle: string, dataDir: string, env?: Record<string, string | undefined> }} o
 */
export function electronCommand({ executable, mainBundle, dataDir, env = process.env }) {
  const childEnv = { ...env, POS_TERMINAL_DATA_DIR: dataDir };
  // An inherited ELECTRON_RUN_AS_NODE would start a Node, not the app (and the terminal reports it).
  delete childEnv.ELECTRON_RUN_AS_NODE;
  return { command: executable, args: [mainBundle], env: childEnv };
}
