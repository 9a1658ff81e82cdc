/**
 * Electron fuse wire, read from the executable: the bytes after the sentinel
 * `dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX` are a version byte, a length byte and that many fuse bytes
 * (`0` disabled, `1` enabled, `r` removed, as @electron/fuses writes them). The value is
 * `<version>:<fuses>`, e.g. `1:01101r1`; a byte that is none of those shows as `?`. The release's
 * `fuseWire` reference value is recorded in the same form. The file is scanned in chunks (a sentinel
 * split across two chunks is found). Not packaged (development, headless, browser): `unknown`.
 *
 * Which file holds the wire (`fuseWireFile`): on Windows and Linux the app's executable, which is the
 * utility process's `process.execPath` too. On macOS the wire is in the framework,
 * `<App>.app/Contents/Frameworks/Electron Framework.framework/Electron Framework` (as
 * @electron/fuses' `pathToFuseFile` flips it), and the utility process runs a helper
 * (`<App>.app/Contents/Frameworks/<App> Helper.app/Contents/MacOS/<App> Helper`): the outermost
 * `.app` in `execPath` is the app bundle.
 */
import type { Collector } from '../types';
import { fail, ok, unknown } from '../types';

export const FUSE_SENTINEL = new TextEncoder().encode('dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX');
const METHOD = 'electron-fuses:executable';

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  outer: for (
    let i = hay.indexOf(first ?? 0, from);
    i >= 0 && i <= hay.length - needle.length;
    i = hay.indexOf(first ?? 0, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Finds the sentinel in a stream of chunks and returns the bytes after it (up to 2 + 255). */
export async function readFuseWire(
  chunks: AsyncIterable<Uint8Array>,
): Promise<
  { found: false } | { found: true; version: number; wire: Uint8Array } | { found: true; truncated: true }
> {
  const need = FUSE_SENTINEL.length;
  let carry = new Uint8Array(0);
  let after: Uint8Array | undefined;
  for await (const chunk of chunks) {
    const buf = new Uint8Array(carry.length + chunk.length);
    buf.set(carry);
    buf.set(chunk, carry.length);
    if (after === undefined) {
      const at = indexOf(buf, FUSE_SENTINEL);
      if (at < 0) {
        carry = buf.slice(Math.max(0, buf.length - (need - 1)));
        continue;
      }
      after = buf.slice(at + need);
    } else {
      const more = new Uint8Array(after.length + chunk.length);
      more.set(after);
      more.set(chunk, after.length);
      after = more;
    }
    if (after.length >= 2 && after.length >= 2 + (after[1] ?? 0)) break;
  }
  if (after === undefined) return { found: false };
  const version = after[0];
  const len = after[1];
  if (version === undefined || len === undefined || after.length < 2 + len)
    return { found: true, truncated: true };
  return { found: true, version, wire: after.slice(2, 2 + len) };
}

/** The file that holds the fuse wire for this platform, from the running executable's path. */
export function fuseWireFile(platform: string, execPath: string): string {
  if (platform !== 'darwin') return execPath;
  const parts = execPath.split('/');
  const app = parts.findIndex((p, i) => p.endsWith('.app') && p.length > 4 && parts[i + 1] === 'Contents');
  if (app < 0) return execPath;
  return [
    ...parts.slice(0, app + 1),
    'Contents',
    'Frameworks',
    'Electron Framework.framework',
    'Electron Framework',
  ].join('/');
}

const FUSE_CHARS: Record<number, string> = { 0x30: '0', 0x31: '1', 0x72: 'r' };

export const electronFuses: Collector = async ({ fs, proc, shell }) => {
  if (shell.kind !== 'electron' || !shell.packaged) return unknown(METHOD, 'not a packaged Electron app');
  let r: Awaited<ReturnType<typeof readFuseWire>>;
  try {
    r = await readFuseWire(fs.chunks(fuseWireFile(proc.platform, proc.execPath)));
  } catch {
    return unknown(METHOD, 'the file with the fuse wire cannot be read');
  }
  if (!r.found) return fail(METHOD, 'no fuse sentinel in the executable');
  if ('truncated' in r) return fail(METHOD, 'the fuse wire is cut short');
  const fuses = [...r.wire].map((b) => FUSE_CHARS[b] ?? '?').join('');
  return ok(METHOD, `${r.version}:${fuses}`);
};
