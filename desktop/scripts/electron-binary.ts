/**
 * Where the Electron binary is, without loading the `electron` package (its index.js tries to
 * download the binary when it is missing). Read from the package's path.txt and dist/, as its own
 * index.js does, or from ELECTRON_OVERRIDE_DIST_PATH.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export function electronPackageDir(): string {
  return dirname(createRequire(import.meta.url).resolve('electron/package.json'));
}

export function electronVersion(): string {
  const pkg = JSON.parse(readFileSync(join(electronPackageDir(), 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  if (typeof pkg.version !== 'string') throw new Error('node_modules/electron/package.json has no version');
  return pkg.version;
}

export type ElectronBinary =
  { found: true; executable: string; distDir: string } | { found: false; why: string };

export function findElectronBinary(
  env: Readonly<Record<string, string | undefined>> = process.env,
  packageDir: string = electronPackageDir(),
): ElectronBinary {
  const override = env['ELECTRON_OVERRIDE_DIST_PATH'];
  const distDir = override !== undefined && override !== '' ? override : join(packageDir, 'dist');
  const pathFile = join(packageDir, 'path.txt');
  if (!existsSync(pathFile))
    return {
      found: false,
      why: `the Electron binary is not installed (${pathFile} is missing: electron's install script did not run, so no binary was downloaded)`,
    };
  const executable = join(distDir, readFileSync(pathFile, 'utf8').trim());
  if (!existsSync(executable))
    return { found: false, why: `the Electron binary ${executable} does not exist` };
  return { found: true, executable, distDir };
}
