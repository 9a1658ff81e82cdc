/**
 * Inside packaged Electron: the app code hash reads app.asar through `original-fs` (Electron's `fs`
 * treats an .asar as a directory), loaded only when `process.versions.electron` is set; and the fuse
 * wire is read from the file that holds it on each platform (macOS: the Electron Framework).
 */
import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fuseWireFile } from '../src/core/attest/collectors/fuses';
import { nodeAttestFs, rawStreamOpener } from '../src/core/attest/node-host';
import { tempDir } from './support';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('rawStreamOpener (original-fs inside Electron)', () => {
  it('plain Node: node:fs, and the loader is never asked', () => {
    const asked: string[] = [];
    const opener = rawStreamOpener({ node: '22.0.0' }, (id) => {
      asked.push(id);
      return {};
    });
    expect(opener).toBe(createReadStream);
    expect(asked).toEqual([]);
  });

  it("Electron: original-fs's createReadStream is the one the hash reads with", async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'app.asar');
    writeFileSync(file, 'archive bytes');
    const asked: string[] = [];
    const opened: string[] = [];
    const originalFs = {
      createReadStream: (path: string, o: { highWaterMark: number }) => {
        opened.push(path);
        return createReadStream(path, o);
      },
    };
    const opener = rawStreamOpener({ node: '22.0.0', electron: '45.5.0' }, (id) => {
      asked.push(id);
      return id === 'original-fs' ? originalFs : undefined;
    });
    expect(asked).toEqual(['original-fs']);
    const chunks: Uint8Array[] = [];
    for await (const c of nodeAttestFs(opener).chunks(file)) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('archive bytes');
    expect(opened).toEqual([file]);
  });

  it('Electron without a usable original-fs: falls back to node:fs, never throws', () => {
    const throwing = rawStreamOpener({ electron: '45.5.0' }, () => {
      throw new Error('Cannot find module');
    });
    expect(throwing).toBe(createReadStream);
    expect(rawStreamOpener({ electron: '45.5.0' }, () => ({}))).toBe(createReadStream);
  });

  it('the default loader under plain Node is not consulted (no original-fs here)', () => {
    expect(process.versions.electron).toBeUndefined();
    expect(rawStreamOpener()).toBe(createReadStream);
  });
});

describe('fuseWireFile (which file holds the fuse wire)', () => {
  it('Linux and Windows: the executable itself', () => {
    expect(fuseWireFile('linux', '/opt/POS Terminal/pos-terminal')).toBe('/opt/POS Terminal/pos-terminal');
    expect(fuseWireFile('win32', 'C:\\Program Files\\POS\\POS Terminal.exe')).toBe(
      'C:\\Program Files\\POS\\POS Terminal.exe',
    );
  });

  it('macOS: the Electron Framework of the outer app bundle, from the main or the helper executable', () => {
    const fw =
      '/Applications/POS Terminal.app/Contents/Frameworks/Electron Framework.framework/Electron Framework';
    expect(fuseWireFile('darwin', '/Applications/POS Terminal.app/Contents/MacOS/POS Terminal')).toBe(fw);
    expect(
      fuseWireFile(
        'darwin',
        '/Applications/POS Terminal.app/Contents/Frameworks/POS Terminal Helper.app/Contents/MacOS/POS Terminal Helper',
      ),
    ).toBe(fw);
    // Not inside an app bundle (a bare binary): the executable.
    expect(fuseWireFile('darwin', '/usr/local/bin/electron')).toBe('/usr/local/bin/electron');
  });
});
