/**
 * App code hash: packaged, the SHA-256 of the app.asar file (`sha256:asar`); otherwise a SHA-256 over
 * the app directory (`sha256:tree`): a sha256sum-style manifest, one line `<hex sha256>  <path>` per
 * file (paths relative, `/`-separated, sorted byte-wise), and a line `-  <path>` for anything that is
 * neither a file nor a directory (a symlink), hashed as a whole. Any file added, removed, renamed or
 * changed changes the hash. More than `MAX_FILES` files, or an unreadable entry, is `unknown`.
 */
import { createHash } from 'node:crypto';
import type { AttestFs, Collector } from '../types';
import { fail, ok, unknown } from '../types';
import { sha256File } from './hash';

export const MAX_FILES = 50_000;

const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The tree hash of a directory, or an error sentence. */
export async function hashTree(
  fs: AttestFs,
  root: string,
): Promise<{ ok: true; hash: string; files: number } | { ok: false; why: string }> {
  const lines: string[] = [];
  let files = 0;
  const walk = async (dir: string, rel: string): Promise<string | undefined> => {
    const entries = await fs.readdir(dir);
    if (entries === undefined) return `cannot read ${rel === '' ? 'the app directory' : rel}`;
    for (const e of [...entries].sort((a, b) => byteOrder(a.name, b.name))) {
      const path = `${dir}/${e.name}`;
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.kind === 'dir') {
        const why = await walk(path, r);
        if (why !== undefined) return why;
      } else if (e.kind === 'file') {
        if (++files > MAX_FILES) return `more than ${MAX_FILES} files`;
        const h = await sha256File(fs, path);
        if (h === undefined) return `cannot read ${r}`;
        lines.push(`${h}  ${r}\n`);
      } else lines.push(`-  ${r}\n`);
    }
    return undefined;
  };
  const why = await walk(root.replace(/\/+$/, ''), '');
  if (why !== undefined) return { ok: false, why };
  const h = createHash('sha256');
  for (const l of lines) h.update(l);
  return { ok: true, hash: h.digest('hex'), files };
}

export const appCodeHash: Collector = async ({ fs, shell }) => {
  if (shell.packaged) {
    if (shell.asarPath === undefined) return fail('sha256:asar', 'packaged without an app.asar');
    const h = await sha256File(fs, shell.asarPath);
    return h === undefined ? unknown('sha256:asar') : ok('sha256:asar', h);
  }
  const t = await hashTree(fs, shell.appPath);
  return t.ok ? ok('sha256:tree', t.hash) : unknown('sha256:tree', t.why);
};
