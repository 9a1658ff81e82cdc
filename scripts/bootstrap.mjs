// Set-up shared by `npm test` and `npm start`: npm dependencies and the system packages the tests use.
// Plain Node with no dependencies, because it runs before `node_modules` exists.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Debian packages the test suites use, and why. */
export const SYSTEM_PACKAGES = [
  ['socat', 'pseudo-terminal pairs: a real serial line for the reader simulator'],
  ['chromium', 'the browser for renderer and dashboard end-to-end tests (driven by playwright-core)'],
  ['libusb-1.0-0', 'node-hid, the reader HID transport'],
  ['udev', "serialport's port listing"],
  ['iproute2', "the full-stack tests' own network namespace for the terminal (ip link set lo up)"],
  ['openssl', "a self-signed certificate for the back-end's TLS test (test/security/api8)"],
];

const MIN_NODE = [20, 19];

export function log(line) {
  process.stdout.write(`[setup] ${line}\n`);
}

export function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    log(`Node ${process.versions.node} is too old: this project needs Node >= ${MIN_NODE.join('.')}.`);
    process.exit(1);
  }
}

function depsFingerprint() {
  const h = createHash('sha256');
  h.update(process.versions.node);
  for (const file of ['package-lock.json', 'package.json']) {
    const p = join(root, file);
    if (existsSync(p)) h.update(readFileSync(p));
  }
  return h.digest('hex');
}

const STAMP = join(root, 'node_modules', '.pos-deps-stamp');

/** Installs npm dependencies with `npm ci` when node_modules is missing or older than the lockfile. */
export function ensureNpmDeps() {
  const want = depsFingerprint();
  const have = existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : '';
  if (have === want) {
    log('npm dependencies: up to date');
    return;
  }
  log(
    existsSync(join(root, 'node_modules'))
      ? 'npm dependencies: stale, running npm ci'
      : 'npm dependencies: missing, running npm ci',
  );
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    log(
      'npm ci failed; see the output above. If it says package.json and package-lock.json are out of sync,',
    );
    log('run `npm install` and commit package-lock.json.');
    process.exit(1);
  }
  writeFileSync(STAMP, `${want}\n`);
}

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/**
 * Installs missing system packages with apt-get when running as root on Debian; otherwise prints the
 * exact command. Never fails the run: a test that needs a missing package skips and says why.
 */
export function ensureSystemPackages() {
  if (process.env.POS_SKIP_SYSTEM_PACKAGES === '1') {
    log('system packages: skipped (POS_SKIP_SYSTEM_PACKAGES=1)');
    return;
  }
  const names = SYSTEM_PACKAGES.map(([n]) => n);
  const isDebian = existsSync('/etc/debian_version');
  if (!isDebian) {
    log(
      `system packages: not Debian; install the equivalents of ${names.join(', ')} with your package manager.`,
    );
    log('  tests that need one of them skip and print why.');
    return;
  }
  const missing = names.filter((n) => !dpkgInstalled(n));
  if (missing.length === 0) {
    log(`system packages: ${names.join(', ')} present`);
    return;
  }
  const cmd = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    log(`system packages missing: ${missing.join(', ')}. Install them with:`);
    log(`  sudo apt-get update && sudo ${cmd}`);
    log('  until then, tests that need them skip and print why.');
    return;
  }
  log(`system packages missing: ${missing.join(', ')}; installing (apt-get, as root)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  const install =
    update.status === 0
      ? spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
          stdio: 'inherit',
          env,
        })
      : update;
  if (install.status !== 0) {
    log(`apt-get failed; tests that need ${missing.join(', ')} will skip and print why. Command: ${cmd}`);
  }
}
