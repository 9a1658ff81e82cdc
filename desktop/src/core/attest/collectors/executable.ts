/** Executable hash: SHA-256 of the running executable (process.execPath: Electron, or node headless). */
import type { Collector } from '../types';
import { ok, unknown } from '../types';
import { sha256File } from './hash';

export const executableHash: Collector = async ({ fs, proc }) => {
  const h = await sha256File(fs, proc.execPath);
  return h === undefined ? unknown('sha256:execPath') : ok('sha256:execPath', h);
};
