/**
 * Builds the terminal's renderer (the React UI) into desktop/dist/renderer: `npm run build -w desktop`.
 * The output is plain files served by the Electron shell (app:// scheme) and the browser shell
 * (loopback): relative paths (`base: './'`), one module script and one stylesheet, no inline script or
 * style, so the page runs under `script-src 'self'; style-src 'self'` (index.html carries that CSP).
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: resolve(here, 'src/renderer'),
  base: './',
  plugins: [react()],
  // No .env file is read into the bundle: the renderer has no configuration of its own.
  envDir: false,
  build: {
    outDir: resolve(here, 'dist/renderer'),
    emptyOutDir: true,
    // Everything as files: a data: URL would need a wider CSP.
    assetsInlineLimit: 0,
    // No modulepreload polyfill: it is an inline-free module but not needed by Chromium.
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'chrome120',
  },
});
