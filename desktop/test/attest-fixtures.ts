/** An in-memory AttestFs and AttestProcess for the collector tests. */
import type { AttestFs, AttestProcess, DirEntry, ShellInfo } from '../src/core/attest/types';

export type FsEntry = string | Uint8Array | { readonly symlink: true } | { readonly unreadable: true };

/** Files by absolute path; directories are implied by the paths. `chunkSize` splits large reads. */
export function memFs(files: Record<string, FsEntry>, chunkSize = 64 * 1024): AttestFs {
  const enc = new TextEncoder();
  const bytes = (e: FsEntry | undefined): Uint8Array | undefined =>
    typeof e === 'string' ? enc.encode(e) : e instanceof Uint8Array ? e : undefined;
  const isDir = (p: string): boolean => Object.keys(files).some((f) => f.startsWith(`${p}/`));
  return {
    readFile: (p) => Promise.resolve(bytes(files[p])),
    readdir: (p) => {
      if (!isDir(p)) return Promise.resolve(undefined);
      const seen = new Map<string, DirEntry>();
      for (const [f, e] of Object.entries(files)) {
        if (!f.startsWith(`${p}/`)) continue;
        const rest = f.slice(p.length + 1);
        const name = rest.split('/')[0] ?? rest;
        const kind = rest.includes('/') ? 'dir' : typeof e === 'object' && 'symlink' in e ? 'other' : 'file';
        seen.set(name, { name, kind });
      }
      return Promise.resolve([...seen.values()].reverse()); // unsorted on purpose
    },
    exists: (p) => Promise.resolve(p in files || isDir(p)),
    chunks: async function* (p) {
      const b = bytes(files[p]);
      if (b === undefined) throw new Error(`cannot read ${p}`);
      for (let i = 0; i < b.length; i += chunkSize) {
        await Promise.resolve();
        yield b.subarray(i, i + chunkSize);
      }
    },
  };
}

export function fakeProcess(over: Partial<AttestProcess> = {}): AttestProcess {
  return {
    execArgv: [],
    env: {},
    platform: 'linux',
    release: '6.1.0-test',
    arch: 'x64',
    execPath: '/opt/pos/pos-terminal',
    inspectorUrl: () => undefined,
    ...over,
  };
}

export function headlessShell(over: Partial<ShellInfo> = {}): ShellInfo {
  return {
    kind: 'headless',
    build: 'development',
    version: '0.1.0',
    packaged: false,
    appPath: '/app',
    ...over,
  };
}

export function electronShell(over: Partial<ShellInfo> = {}): ShellInfo {
  return {
    kind: 'electron',
    build: 'release',
    version: '1.2.3',
    packaged: true,
    appPath: '/opt/pos/resources/app.asar',
    asarPath: '/opt/pos/resources/app.asar',
    devtoolsOpen: false,
    contentProtection: true,
    ...over,
  };
}
