/**
 * The status report sequence number: strictly increasing per reader, across restarts and crashes.
 * Numbers are reserved on disk in blocks (write-ahead, like the KSN): a crash skips the rest of a
 * block, and no number is ever given twice.
 */
import { ok, type Result } from '@pos/shared';
import { z } from 'zod';
import type { SimCode } from '../result';
import { readJson, writeJsonAtomic } from './files';

export const STATUS_SEQ_FILE = 'status-seq.json';
const BLOCK = 64;

const SeqFileSchema = z.strictObject({
  version: z.literal(1),
  /** Every number below this may have been given out. */
  reserved: z
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER - BLOCK),
});

export class StatusSequence {
  private constructor(
    private readonly dir: string,
    private next: number,
    private reserved: number,
  ) {}

  static load(dir: string): Result<{ seq: StatusSequence }, SimCode> {
    const file = readJson(dir, STATUS_SEQ_FILE, SeqFileSchema);
    if (!file.ok) return file;
    const start = file.value?.reserved ?? 0;
    return ok({ seq: new StatusSequence(dir, start, start) });
  }

  /** The next number, reserving a new block on disk first when the current one is used up. */
  take(): Result<{ seq: number }, SimCode> {
    if (this.next >= this.reserved) {
      const reserved = this.next + BLOCK;
      const w = writeJsonAtomic(this.dir, STATUS_SEQ_FILE, { version: 1, reserved });
      if (!w.ok) return w;
      this.reserved = reserved;
    }
    return ok({ seq: this.next++ });
  }
}
