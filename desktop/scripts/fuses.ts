/**
 * The Electron fuse decisions: one table, one row per fuse of the installed @electron/fuses
 * (`FuseV1Options`), each with its setting and why. The packaging hook (after-pack.ts) flips exactly
 * these, and refuses to run — as the test does — when the installed @electron/fuses knows a fuse
 * this table does not decide (an Electron upgrade that brings a new fuse stops the build until
 * someone decides it and says why here). docs/electron.md explains each.
 */
import { FuseV1Options, FuseVersion, type FuseV1Config } from '@electron/fuses';

export interface FuseDecision {
  readonly enabled: boolean;
  readonly why: string;
}

export const FUSE_DECISIONS = {
  RunAsNode: {
    enabled: false,
    why: 'ELECTRON_RUN_AS_NODE would turn the signed app binary into a plain Node that runs any script with the app’s identity; the core runs in a utility process, which needs no run-as-node.',
  },
  EnableCookieEncryption: {
    enabled: true,
    why: 'The app keeps no secrets in cookies, but if anything ever lands in the cookie store it is encrypted with the OS key store, as in Chrome (one-way: never turn it off again).',
  },
  EnableNodeOptionsEnvironmentVariable: {
    enabled: false,
    why: 'NODE_OPTIONS could --require arbitrary code into the main and utility processes at start-up; the attestation also reports NODE_OPTIONS when set.',
  },
  EnableNodeCliInspectArguments: {
    enabled: false,
    why: '--inspect/--inspect-brk would open a debugger on the main process, which reaches the core and every IPC message.',
  },
  EnableEmbeddedAsarIntegrityValidation: {
    enabled: true,
    why: 'Electron checks app.asar’s header hash against the one embedded at package time (macOS: Info.plist; Windows: a resource of the exe) and exits on a mismatch; not supported on Linux (see docs/electron.md).',
  },
  OnlyLoadAppFromAsar: {
    enabled: true,
    why: 'Without it, an app folder or a loose default_app next to app.asar would be loaded instead, bypassing the integrity check.',
  },
  LoadBrowserProcessSpecificV8Snapshot: {
    enabled: false,
    why: 'The app ships no browser-process V8 snapshot; off keeps the one snapshot file Electron ships and loads for every process.',
  },
  GrantFileProtocolExtraPrivileges: {
    enabled: false,
    why: 'The UI is served from app://, never file://; file:// pages get no more than a browser gives them.',
  },
  WasmTrapHandlers: {
    enabled: true,
    why: 'The default and Chrome’s setting: V8 bounds-checks WebAssembly memory with guard regions and signal handlers, the tested path; the app adds no signal handlers that would conflict.',
  },
} as const satisfies Record<string, FuseDecision>;

export type FuseName = keyof typeof FUSE_DECISIONS;

/** The installed @electron/fuses's fuses as name → wire index (a numeric TypeScript enum). */
export function installedFuses(options: object = FuseV1Options): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, index] of Object.entries(options))
    if (typeof index === 'number' && Number.isNaN(Number(name))) out.set(name, index);
  return out;
}

/** Fuses the installed @electron/fuses knows and the table does not decide. */
export function undecidedFuses(options: object = FuseV1Options): string[] {
  return [...installedFuses(options).keys()].filter((n) => !Object.hasOwn(FUSE_DECISIONS, n));
}

/** Rows of the table the installed @electron/fuses does not know (a fuse renamed or dropped). */
export function staleDecisions(options: object = FuseV1Options): string[] {
  const known = installedFuses(options);
  return Object.keys(FUSE_DECISIONS).filter((n) => !known.has(n));
}

export class FuseTableError extends Error {
  constructor(
    readonly undecided: readonly string[],
    readonly stale: readonly string[],
  ) {
    super(
      [
        undecided.length > 0
          ? `the installed @electron/fuses has fuses nobody decided: ${undecided.join(', ')}; add each to FUSE_DECISIONS in desktop/scripts/fuses.ts with its setting and why (and to docs/electron.md)`
          : '',
        stale.length > 0
          ? `FUSE_DECISIONS names fuses @electron/fuses does not know: ${stale.join(', ')}`
          : '',
      ]
        .filter((s) => s !== '')
        .join('; '),
    );
    this.name = 'FuseTableError';
  }
}

/** Throws `FuseTableError` unless the table and the installed @electron/fuses name the same fuses. */
export function assertFuseTableComplete(options: object = FuseV1Options): void {
  const undecided = undecidedFuses(options);
  const stale = staleDecisions(options);
  if (undecided.length > 0 || stale.length > 0) throw new FuseTableError(undecided, stale);
}

/** The config for `flipFuses`: every fuse set explicitly, and strict (a longer wire in the binary fails). */
export function fuseConfig(opts: { resetAdHocDarwinSignature: boolean }): FuseV1Config {
  assertFuseTableComplete();
  const config: Record<number, boolean> = {};
  for (const [name, index] of installedFuses()) config[index] = FUSE_DECISIONS[name as FuseName].enabled;
  return {
    version: FuseVersion.V1,
    strictlyRequireAllFuses: true,
    resetAdHocDarwinSignature: opts.resetAdHocDarwinSignature,
    ...(config as Record<FuseV1Options, boolean>),
  };
}

/**
 * The fuse wire a binary packaged with this table carries, in the form the terminal's `fuses`
 * measurement reports and the back-end's `fuseWire` reference value holds: `<version>:<0|1 per fuse>`.
 */
export function expectedFuseWire(options: object = FuseV1Options): string {
  assertFuseTableComplete(options);
  const byIndex = [...installedFuses(options)].sort((a, b) => a[1] - b[1]);
  // The wire is positional: the enum's indices must be 0..n-1 with no gap.
  if (byIndex.some(([, index], i) => index !== i))
    throw new Error(
      'the installed @electron/fuses has a gap in its fuse indices; the wire cannot be derived',
    );
  const wire = byIndex.map(([name]) => (FUSE_DECISIONS[name as FuseName].enabled ? '1' : '0')).join('');
  return `${Number.parseInt(FuseVersion.V1, 10)}:${wire}`;
}
