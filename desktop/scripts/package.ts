/**
 * `npm run package -w desktop [-- --linux|--win|--mac] [--dir]`: checks that a package can be built
 * here (the Electron binary installed, every fuse decided, the renderer built), bundles and stages the
 * app (build-electron.ts), then runs electron-builder with electron-builder.config.mjs; its afterPack
 * hook flips the fuses. Without the Electron binary (as on the build machines of this repository) it
 * stops at once with POS_ERR_DESKTOP_PACKAGE_NO_ELECTRON and says why, before touching anything.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildElectron, DESKTOP_DIR } from './build-electron';
import { findElectronBinary, electronVersion, type ElectronBinary } from './electron-binary';
import { FuseTableError, assertFuseTableComplete } from './fuses';

export type PackageCode =
  'POS_ERR_DESKTOP_PACKAGE_NO_ELECTRON' | 'POS_ERR_DESKTOP_PACKAGE_FUSES' | 'POS_ERR_DESKTOP_PACKAGE_BUILD';

export interface PackagePlan {
  readonly platform: 'linux' | 'win' | 'mac';
  readonly dirOnly: boolean;
}

export function parsePackageArgs(argv: readonly string[], host = process.platform): PackagePlan | string {
  let platform: PackagePlan['platform'] = host === 'win32' ? 'win' : host === 'darwin' ? 'mac' : 'linux';
  let dirOnly = false;
  for (const a of argv) {
    if (a === '--linux') platform = 'linux';
    else if (a === '--win') platform = 'win';
    else if (a === '--mac') platform = 'mac';
    else if (a === '--dir') dirOnly = true;
    else return `unknown argument ${a} (use --linux, --win, --mac, --dir)`;
  }
  return { platform, dirOnly };
}

/** The checks before anything is built; the first failure, or undefined. */
export function preflight(
  binary: ElectronBinary = findElectronBinary(),
): { code: PackageCode; message: string } | undefined {
  if (!binary.found)
    return {
      code: 'POS_ERR_DESKTOP_PACKAGE_NO_ELECTRON',
      message: `cannot package: ${binary.why}. Install it on a machine with network access (node node_modules/electron/install.js, or npm rebuild electron) and run again.`,
    };
  try {
    assertFuseTableComplete();
  } catch (e) {
    if (e instanceof FuseTableError)
      return { code: 'POS_ERR_DESKTOP_PACKAGE_FUSES', message: `cannot package: ${e.message}` };
    throw e;
  }
  return undefined;
}

export async function main(argv: readonly string[]): Promise<number> {
  const plan = parsePackageArgs(argv);
  if (typeof plan === 'string') {
    console.error(`POS_ERR_DESKTOP_PACKAGE_BUILD: ${plan}`);
    return 2;
  }
  const binary = findElectronBinary();
  const failed = preflight(binary);
  if (failed !== undefined || !binary.found) {
    console.error(`${failed?.code ?? 'POS_ERR_DESKTOP_PACKAGE_NO_ELECTRON'}: ${failed?.message ?? ''}`);
    return 1;
  }
  try {
    const built = await buildElectron();
    console.log(`staged ${built.appDir}`);
    const { build, Platform } = await import('electron-builder');
    const { default: config } = (await import(
      pathToFileURL(join(DESKTOP_DIR, 'electron-builder.config.mjs')).href
    )) as { default: Record<string, unknown> };
    const target = { linux: Platform.LINUX, win: Platform.WINDOWS, mac: Platform.MAC }[plan.platform];
    const hostPlatform =
      process.platform === 'win32' ? 'win' : process.platform === 'darwin' ? 'mac' : 'linux';
    await build({
      projectDir: DESKTOP_DIR,
      targets: target.createTarget(plan.dirOnly ? 'dir' : null),
      config: {
        ...config,
        electronVersion: electronVersion(),
        // The installed binary for the host's own platform; other platforms are downloaded.
        ...(hostPlatform === plan.platform ? { electronDist: binary.distDir } : {}),
      },
    });
    console.log(`packages in ${join(DESKTOP_DIR, 'dist/release')}`);
    console.log('next: npm run release-manifest -w desktop -- --asar <app.asar> --version <v> --out <file>');
    return 0;
  } catch (e) {
    const fuses = e instanceof FuseTableError || (e instanceof Error && e.message.startsWith('afterPack:'));
    console.error(
      `${fuses ? 'POS_ERR_DESKTOP_PACKAGE_FUSES' : 'POS_ERR_DESKTOP_PACKAGE_BUILD'}: ${e instanceof Error ? e.message : String(e)}`,
    );
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href)
  process.exitCode = await main(process.argv.slice(2));
