/**
 * The simulated firmware image and its hash: SHA-256 over the simulator's own source files (sorted
 * paths, each as `path NUL length NUL bytes`), so changing the firmware changes the hash the signed
 * status reports, as it would on a real reader.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p));
    else if (entry.isFile() && entry.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

let cached: string | undefined;

/** Upper-case hex SHA-256 of the firmware image (device-sim/src). */
export function firmwareHash(): string {
  if (cached !== undefined) return cached;
  const h = createHash('sha256');
  for (const file of listFiles(SRC_DIR).sort()) {
    const bytes = readFileSync(file);
    h.update(`${relative(SRC_DIR, file)}\0${bytes.length}\0`);
    h.update(bytes);
  }
  cached = h.digest('hex').toUpperCase();
  return cached;
}
