/** The real filesystem and process for the collectors (Node, Electron's utility process). */
import { createReadStream } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { url as inspectorUrl } from 'node:inspector';
import { arch, platform, release } from 'node:os';
import type { AttestFs, AttestProcess } from './types';

/** Small files only (sysfs, efivars): reads are capped. */
const SMALL_FILE_MAX = 64 * 1024;

export function nodeAttestFs(): AttestFs {
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
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
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
