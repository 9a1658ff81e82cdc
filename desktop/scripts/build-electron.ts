/**
 * Bundles the Electron shell and stages the app directory electron-builder packs into app.asar:
 *
 *   dist/electron/main.mjs         the main process (ESM; electron external)
 *   dist/electron/preload.cjs      the preload (CommonJS, browser platform: a sandboxed preload has no
 *                                  Node and can require only electron, so everything else is inlined)
 *   dist/electron/core-process.cjs the utility process (CommonJS: Electron documents ESM for the main
 *                                  process, not for utility processes; the native reader modules external)
 *   dist/app/                      package.json (main, type, the native dependencies only), electron/,
 *                                  renderer/ (copied from dist/renderer, built by `npm run build`)
 *
 * The workspace packages (@pos/shared, the core) are TypeScript and are bundled in; only serialport and
 * node-hid stay node_modules (native bindings, unpacked from the asar).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const DESKTOP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Packages that load native bindings: never bundled, unpacked from the asar. */
export const NATIVE_PACKAGES = ['serialport', 'node-hid'] as const;

const esmRequireBanner =
  "import { createRequire as __posCreateRequire } from 'node:module'; const require = __posCreateRequire(import.meta.url);";

export interface BuiltElectron {
  readonly electronDir: string;
  readonly appDir: string;
}

export async function bundleElectron(desktopDir: string, outDir: string): Promise<string> {
  const electronDir = join(outDir, 'electron');
  rmSync(electronDir, { recursive: true, force: true });
  const common = { bundle: true, sourcemap: false, legalComments: 'none', logLevel: 'warning' } as const;
  await build({
    ...common,
    entryPoints: [join(desktopDir, 'src/main/index.ts')],
    outfile: join(electronDir, 'main.mjs'),
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: ['electron'],
    banner: { js: esmRequireBanner },
  });
  await build({
    ...common,
    entryPoints: [join(desktopDir, 'src/preload/index.ts')],
    outfile: join(electronDir, 'preload.cjs'),
    platform: 'browser',
    format: 'cjs',
    target: 'chrome130',
    external: ['electron'],
  });
  await build({
    ...common,
    entryPoints: [join(desktopDir, 'src/utility/core-process.ts')],
    outfile: join(electronDir, 'core-process.cjs'),
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    external: [...NATIVE_PACKAGES, '@serialport/*'],
    // The core reads import.meta.url (its own location); in CommonJS that is the bundle's file URL.
    define: { 'import.meta.url': '__posImportMetaUrl' },
    banner: { js: "const __posImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  return electronDir;
}

/** Writes dist/app: the package.json electron-builder installs and packs, the bundles and the renderer. */
export function stageApp(desktopDir: string, outDir: string): string {
  const renderer = join(outDir, 'renderer');
  if (!existsSync(join(renderer, 'index.html')))
    throw new Error(
      `the renderer is not built (${renderer}/index.html is missing): run npm run build -w desktop`,
    );
  const pkg = JSON.parse(readFileSync(join(desktopDir, 'package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };
  const appDir = join(outDir, 'app');
  rmSync(appDir, { recursive: true, force: true });
  mkdirSync(appDir, { recursive: true });
  const dependencies: Record<string, string> = {};
  for (const name of NATIVE_PACKAGES) {
    const v = pkg.dependencies[name];
    if (v === undefined) throw new Error(`desktop/package.json does not depend on ${name}`);
    dependencies[name] = v;
  }
  writeFileSync(
    join(appDir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'pos-terminal',
        productName: 'POS Terminal',
        description: 'The merchant payment terminal',
        version: pkg.version,
        private: true,
        type: 'module',
        main: 'electron/main.mjs',
        author: 'POS',
        dependencies,
      },
      null,
      2,
    )}\n`,
  );
  cpSync(join(outDir, 'electron'), join(appDir, 'electron'), { recursive: true });
  cpSync(renderer, join(appDir, 'renderer'), { recursive: true });
  return appDir;
}

export async function buildElectron(desktopDir = DESKTOP_DIR): Promise<BuiltElectron> {
  const outDir = join(desktopDir, 'dist');
  const electronDir = await bundleElectron(desktopDir, outDir);
  const appDir = stageApp(desktopDir, outDir);
  return { electronDir, appDir };
}
