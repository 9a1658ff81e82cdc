/** SHA-256 helpers over the injected filesystem. */
import { createHash } from 'node:crypto';
import type { AttestFs } from '../types';

/** Hex SHA-256 of a file read in chunks, or undefined when it cannot be read. */
export async function sha256File(fs: AttestFs, path: string): Promise<string | undefined> {
  const h = createHash('sha256');
  try {
    for await (const chunk of fs.chunks(path)) h.update(chunk);
  } catch {
    return undefined;
  }
  return h.digest('hex');
}
