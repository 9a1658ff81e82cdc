/**
 * What the attestation collectors read, injected: the filesystem, the process, and what only the shell
 * knows (packaged or not, devtools, content protection). Production passes `nodeAttestFs()` and
 * `nodeAttestProcess()`; tests pass fixtures. A collector never throws: anything it cannot read is
 * `unknown` (the back-end treats unknown as not ok), anything it reads and dislikes is `fail`.
 */
import type { BuildKind, MeasurementStatus, ShellKind } from '@pos/shared';

export interface MeasurementResult {
  readonly status: MeasurementStatus;
  /** What was measured (a hash, a flag name, a count): never a secret, at most 512 characters. */
  readonly value?: string | number | boolean;
  /** How it was measured, e.g. `sha256:asar`, `process.execArgv`, `sysfs:dmi`. */
  readonly method: string;
}

export interface DirEntry {
  readonly name: string;
  readonly kind: 'file' | 'dir' | 'other';
}

export interface AttestFs {
  /** A small file's bytes, or undefined when it is missing or unreadable. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** A directory's entries (symlinks are `other`), or undefined when it is missing or unreadable. */
  readdir(path: string): Promise<readonly DirEntry[] | undefined>;
  exists(path: string): Promise<boolean>;
  /** A (large) file's bytes in chunks; the iteration rejects if the file cannot be read. */
  chunks(path: string): AsyncIterable<Uint8Array>;
}

export interface AttestProcess {
  readonly execArgv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly platform: string;
  readonly release: string;
  readonly arch: string;
  readonly execPath: string;
  /** node:inspector url(): defined while an inspector listens. */
  inspectorUrl(): string | undefined;
}

/** What the shell (Electron main, browser shell, headless CLI) tells the core about itself. */
export interface ShellInfo {
  readonly kind: ShellKind;
  readonly build: BuildKind;
  readonly version: string;
  /** A packaged app (Electron with an asar); false in development and headless runs. */
  readonly packaged: boolean;
  /** The app's code directory (development, headless). */
  readonly appPath: string;
  /** Packaged: the app.asar file. */
  readonly asarPath?: string;
  /** Electron: whether devtools are open in any window (undefined: the shell cannot tell). */
  readonly devtoolsOpen?: boolean;
  /** Electron: whether every window has content protection on (undefined: the shell cannot tell). */
  readonly contentProtection?: boolean;
  /**
   * Electron: debugging switches found on the main process's command line (names only, e.g.
   * `remote-debugging-port`); the collectors run in another process and cannot see them.
   */
  readonly mainSwitches?: readonly string[];
}

export interface CollectContext {
  readonly fs: AttestFs;
  readonly proc: AttestProcess;
  readonly shell: ShellInfo;
}

export type Collector = (ctx: CollectContext) => Promise<MeasurementResult>;

export const ok = (method: string, value?: string | number | boolean): MeasurementResult =>
  value === undefined ? { status: 'ok', method } : { status: 'ok', method, value };
export const fail = (method: string, value?: string | number | boolean): MeasurementResult =>
  value === undefined ? { status: 'fail', method } : { status: 'fail', method, value };
export const unknown = (method: string, value?: string | number | boolean): MeasurementResult =>
  value === undefined ? { status: 'unknown', method } : { status: 'unknown', method, value };
