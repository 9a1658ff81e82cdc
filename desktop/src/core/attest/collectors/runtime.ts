/**
 * Signals of someone inside the process. Values name flags or variables, never their contents
 * (NODE_OPTIONS may carry paths or secrets).
 *
 * - debugger: `--inspect*` / `--debug*` in process.execArgv (a debugger was asked for at start).
 * - inspector: node:inspector `url()` is defined (an inspector is listening now, however it was opened).
 * - suspicious-env: execArgv flags that load or change code (`--require`, `--import`, `--loader`,
 *   `--expose-internals`, `--allow-natives-syntax`, `--eval`, ...) and library-injection variables
 *   (LD_PRELOAD, DYLD_INSERT_LIBRARIES, ...).
 * - node-options: NODE_OPTIONS set and not empty.
 * - run-as-node: ELECTRON_RUN_AS_NODE set (Electron would be a plain Node with the app's privileges).
 */
import type { Collector } from '../types';
import { fail, ok } from '../types';

const flagName = (a: string): string => a.split('=')[0] ?? a;

const DEBUG_FLAGS = /^--(inspect|inspect-brk|inspect-wait|inspect-port|debug|debug-brk|debug-port)$/;

export const debuggerFlags: Collector = ({ proc }) => {
  const hits = proc.execArgv.map(flagName).filter((f) => DEBUG_FLAGS.test(f));
  return Promise.resolve(hits.length > 0 ? fail('process.execArgv', hits.join(' ')) : ok('process.execArgv'));
};

export const inspectorActive: Collector = ({ proc }) => {
  let url: string | undefined;
  try {
    url = proc.inspectorUrl();
  } catch {
    url = undefined;
  }
  return Promise.resolve(
    url === undefined ? ok('node:inspector.url') : fail('node:inspector.url', 'listening'),
  );
};

export const SUSPICIOUS_FLAGS = new Set([
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '--expose-internals',
  '--allow-natives-syntax',
  '-e',
  '--eval',
  '-p',
  '--print',
  '--cpu-prof',
  '--heap-prof',
  '--prof',
  '--heapsnapshot-signal',
  '--heapsnapshot-near-heap-limit',
  '--remote-debugging-port',
  '--js-flags',
]);
export const SUSPICIOUS_ENV = [
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'LD_AUDIT',
  'DYLD_INSERT_LIBRARIES',
  'DYLD_LIBRARY_PATH',
  'DYLD_FRAMEWORK_PATH',
  'NODE_PATH',
  'NODE_REPL_EXTERNAL_MODULE',
  'ELECTRON_ENABLE_LOGGING',
  'ELECTRON_DEBUG_NOTIFICATIONS',
] as const;

export const suspiciousEnv: Collector = ({ proc, shell }) => {
  const flags = [
    ...proc.execArgv.map(flagName).filter((f) => SUSPICIOUS_FLAGS.has(f)),
    // The Electron main process's debugging switches, as the shell reports them (names only).
    ...(shell.mainSwitches ?? []).map((s) => `--${s}`.slice(0, 64)),
  ];
  const vars = SUSPICIOUS_ENV.filter((v) => (proc.env[v] ?? '') !== '');
  const hits = [...new Set([...flags, ...vars])];
  return Promise.resolve(
    hits.length > 0 ? fail('process.execArgv+env', hits.join(' ').slice(0, 512)) : ok('process.execArgv+env'),
  );
};

export const nodeOptions: Collector = ({ proc }) => {
  const v = proc.env['NODE_OPTIONS'];
  return Promise.resolve(
    v !== undefined && v.trim() !== '' ? fail('env:NODE_OPTIONS', 'set') : ok('env:NODE_OPTIONS'),
  );
};

export const runAsNode: Collector = ({ proc }) => {
  const v = proc.env['ELECTRON_RUN_AS_NODE'];
  return Promise.resolve(
    v !== undefined ? fail('env:ELECTRON_RUN_AS_NODE', 'set') : ok('env:ELECTRON_RUN_AS_NODE'),
  );
};

/**
 * Devtools: a headless process has no window, so no devtools can be open in it (`ok`, method
 * `headless:no-window`; Node's own debugging door, the inspector, is the `inspector` and `debugger`
 * measurements). Otherwise only the Electron shell can tell; unreported is unknown.
 */
export const devtoolsOpen: Collector = ({ shell }) => {
  if (shell.kind === 'headless') return Promise.resolve(ok('headless:no-window'));
  if (shell.devtoolsOpen === undefined) return Promise.resolve({ status: 'unknown', method: 'shell-report' });
  return Promise.resolve(shell.devtoolsOpen ? fail('shell-report', 'open') : ok('shell-report'));
};

/**
 * Screen-capture protection (Electron setContentProtection on every window). Headless: the process
 * shows no window, so there is no PIN pad on screen to capture (`ok`, method `headless:no-window`).
 * Unreported: unknown.
 */
export const screenCaptureProtection: Collector = ({ shell }) => {
  if (shell.kind === 'headless') return Promise.resolve(ok('headless:no-window'));
  if (shell.contentProtection === undefined)
    return Promise.resolve({ status: 'unknown', method: 'shell-report' });
  return Promise.resolve(shell.contentProtection ? ok('shell-report') : fail('shell-report', 'off'));
};
