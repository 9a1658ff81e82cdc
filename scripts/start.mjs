#!/usr/bin/env node
// `npm start`: the whole system on its embedded defaults (docs/terminal.md, "npm start").
//
//   npm start [-- --data-dir DIR] [--headless | --shell electron|browser|headless] [--no-open] [--port N]
//
// In DIR (default .data/start in the project, git-ignored; created 0700): a development reader PKI
// (the reader simulator's manufacturer CA, reader certificate and DUKPT key from the development BDK,
// which the back-end's acquirer host shares), the back-end (SQLite, --dev, the reader CA trusted), the
// reader simulator on one end of a socat pseudo-terminal pair (the terminal opens the other), an
// operator account with a generated password (DIR/operator-password, 0600), this build's reference
// values, and an enrolled terminal paired with the reader (DIR/terminal). Then the terminal app: the
// Electron app where its binary is present (the development bundles on DIR/terminal; no URL, so
// `terminal` is null in the ready line), otherwise the browser shell (`desktop/bin/pos-terminal-ui.js`: the core holding the reader, the UI on loopback behind a
// per-launch secret; its URL is `terminal` in the ready line); with --headless no UI runs and the
// terminal is the `pos-terminal` CLI, run per command. No browser is opened (--no-open is the default).
//
// The first line on stdout is one JSON object (event "ready"); then a description for a person.
// Set-up output goes to stderr. SIGINT / SIGTERM stop every child and exit 0. A second start on the
// same DIR reuses it: same port, same reader, same terminal (no new enrollment).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { chooseShell, detectElectron, electronCommand } from '../desktop/scripts/electron-launch.mjs';
import { root } from './bootstrap.mjs';

const USAGE =
  'usage: npm start [-- --data-dir DIR] [--headless | --shell electron|browser|headless] [--no-open] [--port N]';

function usage(detail) {
  process.stderr.write(`start: POS_ERR_CLI_USAGE: ${detail}\n${USAGE}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    args: process.argv.slice(2),
    options: {
      'data-dir': { type: 'string' },
      headless: { type: 'boolean' },
      shell: { type: 'string' },
      'no-open': { type: 'boolean' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch {
  usage('unknown option or missing value');
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
// The shell: --headless / --shell headless, --shell browser, --shell electron; by default Electron
// where its binary is present (POS_ELECTRON_BINARY, or node_modules/electron's path.txt and dist/),
// otherwise the browser shell. desktop/scripts/electron-launch.mjs decides (tested under plain Node).
const electronBinary = detectElectron({ electronDir: join(root, 'node_modules', 'electron') });
const chosen = chooseShell({ shell: args.shell, headless: args.headless, electron: electronBinary });
if (!chosen.ok) usage(chosen.why);
const shellKind = chosen.shell;
const headless = shellKind === 'headless';
if (args.port !== undefined && !/^\d{1,5}$/.test(args.port)) usage('--port is a number 1-65535');
if (args['data-dir'] !== undefined && (args['data-dir'].length === 0 || args['data-dir'].length > 4096))
  usage('--data-dir is a directory path');

// Set-up (npm dependencies) with all its output on stderr: stdout's first line is the ready line.
// POS_START_SKIP_SETUP=1 skips it (the full-stack tests: they run inside `npm test`, after its set-up,
// and must never reinstall node_modules under the other test files).
const setup =
  process.env.POS_START_SKIP_SETUP === '1'
    ? { status: 0 }
    : spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const b = await import(${JSON.stringify(join(root, 'scripts', 'bootstrap.mjs'))}); b.checkNode(); b.ensureNpmDeps();`,
        ],
        { cwd: root, stdio: ['inherit', 2, 2] },
      );
if (setup.status !== 0) process.exit(1);

const say = (line) => process.stderr.write(`[start] ${line}\n`);
const SOCAT = ['/usr/bin/socat', '/usr/local/bin/socat', '/bin/socat'].find((p) => existsSync(p));
if (SOCAT === undefined) {
  say('socat is missing: it makes the pseudo-terminal pair the reader simulator and the terminal talk over.');
  say('Install it with:  sudo apt-get install -y socat   (macOS: brew install socat)');
  process.exit(1);
}

const dataDir = resolve(args['data-dir'] ?? join(root, '.data', 'start'));
const dirs = {
  backend: join(dataDir, 'backend'),
  reader: join(dataDir, 'reader'),
  terminal: join(dataDir, 'terminal'),
  logs: join(dataDir, 'logs'),
};
for (const d of [dataDir, ...Object.values(dirs)]) {
  mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(d, 0o700);
}
const files = {
  system: join(dataDir, 'system.json'),
  password: join(dataDir, 'operator-password'),
  readerPty: join(dataDir, 'reader.pty'),
  terminalPty: join(dataDir, 'terminal.pty'),
  ca: join(dirs.reader, 'manufacturer-ca', 'ca.pem'),
  adminToken: join(dirs.backend, 'admin-token'),
  terminalKeys: join(dirs.terminal, 'terminal.json'),
  simulator: join(dirs.terminal, 'simulator.json'),
  jwks: join(dataDir, 'backend-jwks.json'),
};
const BIN = {
  backend: join(root, 'backend', 'bin', 'pos-backend.js'),
  sim: join(root, 'device-sim', 'bin', 'pos-reader-sim.js'),
  terminal: join(root, 'desktop', 'bin', 'pos-terminal.js'),
  ui: join(root, 'desktop', 'bin', 'pos-terminal-ui.js'),
};
const RENDERER_INDEX = join(root, 'desktop', 'dist', 'renderer', 'index.html');
const DASHBOARD_INDEX = join(root, 'backend', 'dist', 'dashboard', 'index.html');
const USERNAME = 'operator';

// ---- children -----------------------------------------------------------------------------------

const children = [];
let stopping = false;

function track(name, child) {
  children.push({ name, child });
  child.once('exit', (code, signal) => {
    if (stopping) return;
    say(`${name} exited unexpectedly (${signal ?? code}); stopping everything (logs in ${dirs.logs})`);
    void stopAll(1);
  });
  return child;
}

function waitExit(child, ms) {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
  });
}

async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  // The reader first (its clients see a clean end), then the back-end (graceful close), then the line.
  for (const { child } of [...children].reverse()) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await waitExit(child, 10_000);
  }
  process.exit(code);
}

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function fail(line) {
  say(line);
  void stopAll(1);
  return new Promise(() => {});
}

/** Runs a node script to completion; resolves with { code, stdout, stderr }. */
function runNode(script, argv, { input } = {}) {
  return new Promise((res) => {
    const child = spawn(process.execPath, [script, ...argv], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, POS_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** Starts a long-running child; resolves with its first stdout line (parsed JSON). */
function startChild(name, argv, logFile) {
  const log = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, argv, {
    cwd: root,
    stdio: ['ignore', 'pipe', log],
    env: { ...process.env, POS_LOG_LEVEL: process.env.POS_LOG_LEVEL ?? 'warn' },
  });
  track(name, child);
  return new Promise((res, rej) => {
    const lines = createInterface({ input: child.stdout });
    let first = true;
    lines.on('line', (l) => {
      if (first) {
        first = false;
        try {
          res({ child, ready: JSON.parse(l) });
        } catch {
          rej(new Error(`${name} did not start (see ${logFile})`));
        }
      } else writeFileSync(logFile, `${l}\n`, { flag: 'a' });
    });
    child.once('exit', () => rej(new Error(`${name} exited before it was ready (see ${logFile})`)));
  });
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

async function api(backend, token, method, path, body) {
  const res = await fetch(backend + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${json?.error?.code ?? ''}`);
  return json;
}

async function waitFor(cond, what, ms = 10_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  await fail(`gave up waiting for ${what}`);
}

// ---- the system ---------------------------------------------------------------------------------

async function main() {
  const system = readJson(files.system) ?? {};
  const port = Number(args.port ?? system.port ?? (await freePort()));
  if (!Number.isInteger(port) || port < 1 || port > 65535) usage('--port is a number 1-65535');
  writeFileSync(files.system, `${JSON.stringify({ ...system, port })}\n`, { mode: 0o600 });

  // In parallel: the development reader PKI (manufacturer CA, reader identity and DUKPT from the
  // development BDK, made once), the serial line (a socat pseudo-terminal pair with stable names in
  // the data dir) and this build's measurement (its reference values).
  const pki = existsSync(files.ca)
    ? Promise.resolve({ code: 0 })
    : runNode(BIN.sim, ['init', '--state-dir', dirs.reader]);
  const measuring = runNode(BIN.terminal, ['measure']);
  const socat = spawn(
    SOCAT,
    ['-d', '-d', `pty,raw,echo=0,link=${files.readerPty}`, `pty,raw,echo=0,link=${files.terminalPty}`],
    { stdio: ['ignore', 'ignore', openSync(join(dirs.logs, 'socat.log'), 'a', 0o600)] },
  );
  track('socat', socat);
  const made = await pki;
  if (made.code !== 0) await fail(`pos-reader-sim init failed: ${made.stderr.trim().split('\n').pop()}`);

  // The back-end: SQLite in DIR/backend, development mode, the reader CA trusted.
  const be = await startChild(
    'back-end',
    [BIN.backend, '--data-dir', dirs.backend, '--port', String(port), '--dev', '--reader-ca', files.ca],
    join(dirs.logs, 'backend.log'),
  ).catch((e) => fail(e.message));
  const backend = be.ready.url;
  if (typeof backend !== 'string') await fail('the back-end did not say where it listens');
  // Written once, with a newline at the end: wait for the whole line, not just the file.
  const tokenLine = () => (existsSync(files.adminToken) ? readFileSync(files.adminToken, 'utf8') : '');
  await waitFor(() => tokenLine().endsWith('\n'), 'the admin token');
  const adminToken = readFileSync(files.adminToken, 'utf8').trim();

  // The reader: it trusts the back-end's ticket keys (refreshed every start: keys may have rotated),
  // then serves its end of the line.
  const reader = (async () => {
    const jwks = await fetch(`${backend}/.well-known/jwks.json`, { signal: AbortSignal.timeout(10_000) })
      .then((r) => r.json())
      .catch(() => undefined);
    if (jwks === undefined || !Array.isArray(jwks.keys)) await fail("the back-end's JWKS cannot be read");
    writeFileSync(files.jwks, `${JSON.stringify(jwks)}\n`, { mode: 0o600 });
    await waitFor(() => existsSync(files.readerPty) && existsSync(files.terminalPty), 'the pseudo-terminals');
    const sim = await startChild(
      'reader simulator',
      [BIN.sim, '--state-dir', dirs.reader, '--serial-path', files.readerPty, '--trust-jwks', files.jwks],
      join(dirs.logs, 'reader.log'),
    ).catch((e) => fail(e.message));
    writeFileSync(files.simulator, `${JSON.stringify({ control: sim.ready.control })}\n`, { mode: 0o600 });
    return { control: sim.ready.control, serial: sim.ready.serial };
  })();

  // The operator account (first start only): a generated password, kept 0600 in the data dir.
  const account = (async () => {
    if (existsSync(files.password)) return;
    const password = randomBytes(18).toString('base64url');
    const r = await runNode(
      BIN.backend,
      ['user', 'add', '--username', USERNAME, '--role', 'admin', '--data-dir', dirs.backend],
      { input: password },
    );
    if (r.code !== 0) await fail(`pos-backend user add failed: ${r.stderr.trim().split('\n').pop()}`);
    writeFileSync(files.password, `${password}\n`, { mode: 0o600 });
  })();

  // This build's reference values (a development build; the headless and browser shells, which run
  // the same code directory), registered when new.
  const SHELLS = ['headless', 'browser'];
  const release = (async () => {
    const m = await measuring;
    if (m.code !== 0) await fail(`pos-terminal measure failed: ${m.stderr.trim()}`);
    const measured = JSON.parse(m.stdout.trim());
    const known = await api(backend, adminToken, 'GET', '/v1/reference-values');
    const has = (known.referenceValues ?? []).some(
      (r) =>
        r.document?.version === measured.version &&
        (r.document?.codeHashes ?? []).includes(measured.codeHash) &&
        SHELLS.every((s) => (r.document?.allowedShells ?? []).includes(s)),
    );
    if (!has)
      await api(backend, adminToken, 'POST', '/v1/reference-values', {
        version: measured.version,
        build: measured.build,
        codeHashes: [measured.codeHash],
        allowedShells: SHELLS,
      });
  })();

  // The renderer for the browser shell: built when missing (in parallel with the rest; its output on
  // stderr). A failed build is not fatal: the shell then serves a page saying how to build it.
  const rendererBuild =
    headless || existsSync(RENDERER_INDEX) || process.env.POS_START_SKIP_UI_BUILD === '1'
      ? Promise.resolve()
      : new Promise((res) => {
          say('building the terminal UI (npm run build -w desktop)...');
          const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
          const b = spawn(npm, ['run', 'build', '-w', 'desktop', '--silent'], {
            cwd: root,
            stdio: ['ignore', 2, 2],
          });
          b.once('error', () => res());
          b.once('exit', (c) => {
            if (c !== 0) say('the terminal UI did not build: the browser shell says how to build it');
            res();
          });
        });

  // The operator dashboard (served by the back-end at /dashboard/): built when missing, headless too.
  const dashboardBuild =
    existsSync(DASHBOARD_INDEX) || process.env.POS_START_SKIP_UI_BUILD === '1'
      ? Promise.resolve()
      : new Promise((res) => {
          say('building the operator dashboard (npm run build -w backend)...');
          const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
          const b = spawn(npm, ['run', 'build', '-w', 'backend', '--silent'], {
            cwd: root,
            stdio: ['ignore', 2, 2],
          });
          b.once('error', () => res());
          b.once('exit', (c) => {
            if (c !== 0) say('the dashboard did not build: /dashboard/ says how to build it');
            res();
          });
        });

  const keys = readJson(files.terminalKeys);
  let terminalId = keys?.config?.terminalId;
  const code =
    terminalId === undefined
      ? (async () => {
          const { merchantId } = await api(backend, adminToken, 'POST', '/v1/merchants', {
            name: 'Demo shop',
          });
          return (await api(backend, adminToken, 'POST', `/v1/merchants/${merchantId}/enrollment-codes`, {}))
            .code;
        })()
      : Promise.resolve(undefined);
  const [{ control, serial }, , , enrollmentCode] = await Promise.all([
    reader,
    account,
    release,
    code,
    rendererBuild,
    dashboardBuild,
  ]);

  // Enroll and pair the terminal (first start only).
  if (terminalId === undefined) {
    const r = await runNode(BIN.terminal, [
      'enroll',
      '--data-dir',
      dirs.terminal,
      '--backend',
      backend,
      '--code',
      enrollmentCode,
      '--reader-serial',
      serial,
      '--reader-ca',
      files.ca,
      '--reader-path',
      files.terminalPty,
    ]);
    if (r.code !== 0) await fail(`pos-terminal enroll failed: ${r.stderr.trim()}`);
    terminalId = JSON.parse(r.stdout.trim()).terminalId;
  }
  const password = readFileSync(files.password, 'utf8').trim();

  // The terminal app: Electron where its binary is present (no URL: `terminal` is null in the ready
  // line), otherwise the browser shell (its URL), or none (--headless).
  let terminalUrl = null;
  if (shellKind === 'electron') {
    say('bundling the Electron shell (desktop/scripts/build-electron.ts)...');
    const desktopDir = join(root, 'desktop');
    const b = await runNode('--import', [
      'tsx',
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(pathToFileURL(join(desktopDir, 'scripts', 'build-electron.ts')).href)});` +
        ` await m.bundleElectron(${JSON.stringify(desktopDir)}, ${JSON.stringify(join(desktopDir, 'dist'))});`,
    ]);
    if (b.code !== 0) await fail(`the Electron shell did not bundle: ${b.stderr.trim()}`);
    const launch = electronCommand({
      executable: electronBinary.executable,
      mainBundle: join(desktopDir, 'dist', 'electron', 'main.mjs'),
      dataDir: dirs.terminal,
    });
    const log = openSync(join(dirs.logs, 'terminal.log'), 'a', 0o600);
    const electronApp = spawn(launch.command, launch.args, {
      cwd: root,
      stdio: ['ignore', log, log],
      env: launch.env,
    });
    track('terminal (Electron)', electronApp);
  } else if (!headless) {
    const uiPort = Number((readJson(files.system) ?? {}).uiPort ?? (await freePort()));
    writeFileSync(files.system, `${JSON.stringify({ ...(readJson(files.system) ?? {}), port, uiPort })}\n`, {
      mode: 0o600,
    });
    const ui = await startChild(
      'terminal (browser shell)',
      [BIN.ui, '--data-dir', dirs.terminal, '--port', String(uiPort)],
      join(dirs.logs, 'terminal.log'),
    ).catch((e) => fail(e.message));
    if (typeof ui.ready.url !== 'string') await fail('the browser shell did not say where it listens');
    terminalUrl = ui.ready.url;
  }

  const ready = {
    event: 'ready',
    dataDir,
    backend,
    dashboard: { url: `${backend}/dashboard/`, username: USERNAME, password },
    terminal: terminalUrl,
    simulator: { control, path: files.readerPty },
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  const rel = (p) => (p.startsWith(`${root}/`) ? p.slice(root.length + 1) : p);
  const dd = rel(dirs.terminal) === '.data/start/terminal' ? '' : ` --data-dir ${rel(dirs.terminal)}`;
  process.stdout.write(
    [
      '',
      'PIN on COTS with continuous attestation: the whole system is running.',
      '',
      `  back-end (A&M)     ${backend}   SQLite in ${rel(dirs.backend)}, development mode; API explorer ${backend}/docs`,
      `  operator dashboard ${backend}/dashboard/   sign in as ${USERNAME} (password in ${rel(files.password)})`,
      `                     admin API token in ${rel(files.adminToken)}`,
      `  reader simulator   serial ${serial} on ${rel(files.readerPty)}; control API ${control}`,
      headless
        ? `  terminal           ${terminalId}, headless (--headless), paired with the reader over ${rel(files.terminalPty)}`
        : shellKind === 'electron'
          ? `  terminal           ${terminalId}, Electron app (${electronBinary.executable}), paired with the reader over ${rel(files.terminalPty)}`
          : `  terminal           ${terminalId}, browser shell (${chosen.why}), paired with the reader over ${rel(files.terminalPty)}`,
      ...(headless || shellKind === 'electron'
        ? []
        : [
            `                     open in a browser on this computer: ${terminalUrl}`,
            '                     (the #c=... part is a single-use code: the page exchanges it once for its secret; another page needs a new start)',
          ]),
      `  logs               ${rel(dirs.logs)}`,
      '',
      ...(headless
        ? [
            'Try a sale (test cards: npx pos-reader-sim cards; visa-pin has PIN 1234):',
            `  npx pos-terminal transact${dd} --amount 12.34 --card visa-pin --pin 1234   # approved`,
            `  npx pos-terminal transact${dd} --amount 12.34 --card visa-pin --pin 0000   # declined`,
            `  npx pos-terminal transact${dd} --amount 12.34 --card visa-pin              # asks for the PIN`,
            `  npx pos-terminal status${dd}`,
          ]
        : [
            'Try a sale: enter an amount and Charge in the browser, then insert a test card into the simulated reader',
            `(test cards: npx pos-reader-sim cards; visa-pin has PIN 1234):`,
            `  curl -X POST ${control}/card -H 'content-type: application/json' -d '{"card":"visa-pin","action":"insert"}'`,
            'The browser shell holds the reader: for the pos-terminal CLI (transact), start with --headless instead.',
            `  npx pos-terminal status${dd}`,
          ]),
      '',
      'Ctrl-C stops everything; `npm start` again reuses this data directory.',
      '',
    ].join('\n'),
  );
}

main().catch((e) => fail(`start failed: ${e instanceof Error ? e.message : String(e)}`));
