/**
 * The Electron main process's entry (bundled to dist/electron/main.mjs by scripts/build-electron.ts).
 * Everything is in app.ts, which the tests import with electron mocked; see docs/electron.md.
 */
import { fileURLToPath } from 'node:url';
import { runMain } from './app';

runMain(fileURLToPath(import.meta.url));
