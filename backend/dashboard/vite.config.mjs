// Builds the operator dashboard into backend/dist/dashboard, served by the back-end at /dashboard/
// (backend/src/server/routes/dashboard.ts). `npm run build -w backend`; a dev server with hot reload:
// `POS_BACKEND_URL=http://127.0.0.1:8080 npm run dashboard:dev -w backend`.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/dashboard/',
  plugins: [react()],
  // `npm run dashboard:dev -w backend`: the dev server forwards the API (and the event stream) to a
  // running back-end, so the session cookie stays same-origin.
  server: {
    port: 5173,
    strictPort: true,
    proxy: { '/v1': { target: process.env.POS_BACKEND_URL ?? 'http://127.0.0.1:8080' } },
  },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    // No inline scripts or data: URLs for scripts: the page's CSP allows scripts from 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
