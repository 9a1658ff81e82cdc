/** The real filesystem and process for the collectors (Node, Electron's utility process). */
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { access, readdir, readFile } from 'node:fs/promises';
import { url as inspectorUrl } from 'node:inspector';
import { arch, platform, release } from 'node:os';
import type { AttestFs, AttestProcess } from './types';

/** Small files only (sysfs, efivars): reads are capped. */
const SMALL_FILE_MAX = 64 * 1024;

/** Loads a module by name (`createRequire` in production; a fake in tests). */
export type ModuleLoader = (id: string) => unknown;

type StreamOpener = (path: string, options: { highWaterMark: number }) => AsyncIterable<unknown>;

/**
 * The `createReadStream` that reads a file as bytes, `app.asar` included. Inside Electron (its utility
 * process, `process.versions.electron` set) `node:fs` is patched to treat `*.asar` as a directory, so
 * reading the archive itself needs Electron's unpatched copy, the built-in module `original-fs`. It is
 * loaded at run time through `createRequire`, so plain Node never asks for it (and a bundler does not
 * try to resolve it). When it cannot be loaded, `node:fs` is used (the measurement then fails as before,
 * never crashes).
 */
export function rawStreamOpener(
  versions: NodeJS.ProcessVersions | Record<string, string | undefined> = process.versions,
  load: ModuleLoader = (id) => createRequire(process.execPath)(id),
): StreamOpener {
  if (versions['electron'] === undefined) return createReadStream;
  try {
    const m = load('original-fs') as { createReadStream?: unknown } | undefined;
    if (typeof m?.createReadStream === 'function') return m.createReadStream as StreamOpener;
  } catch {
    // Not Electron after all, or a build without original-fs: node:fs below.
  }
  return createReadStream;
}

export function nodeAttestFs(opener: StreamOpener = rawStreamOpener()): AttestFs {
  return {
    async readFile(path) {
      try {
        const b = await readFile(path);
        return b.length > SMALL_FILE_MAX ? undefined : new Uint8Array(b);
      } catch {
        return undefined;
      }
    },
    async readdir(path) {
      try {
        const entries = await readdir(path, { withFileTypes: true });
        return entries.map((e) => ({
          name: e.name,
          kind: e.isFile() ? ('file' as const) : e.isDirectory() ? ('dir' as const) : ('other' as const),
        }));
      } catch {
        return undefined;
      }
    },
    async exists(path) {
      try {
        await access(path);
        return true;
      } catch {
        return false;
      }
    },
    async *chunks(path) {
      for await (const chunk of opener(path, { highWaterMark: 1 << 20 })) {
        const b = chunk as Buffer;
        yield new Uint8Array(b.buffer, b.byteOffset, b.length);
      }
    },
  };
}

export function nodeAttestProcess(): AttestProcess {
  return {
    execArgv: [...process.execArgv],
    env: process.env,
    platform: platform(),
    release: release(),
    arch: arch(),
    execPath: process.execPath,
    inspectorUrl: () => inspectorUrl(),
  };
}
