/**
 * `npm run bench -- soak`: a short soak (9 s, 2 terminals) against a real back-end process prints its
 * one result line with every field, and no error; bad options are refused with a code before anything
 * runs. Nothing here asserts a speed or a memory size (the bench reports them).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bench, expectRefused, jsonLines } from './bench-helpers';

const mb = z.number().positive().nullable();
const SoakLine = z.strictObject({
  bench: z.literal('soak'),
  minutes: z.number(),
  terminals: z.number().int(),
  errors: z.number().int(),
  rss_start_mb: mb,
  rss_end_mb: mb,
  p99_first_minute_ms: z.number().positive(),
  p99_last_minute_ms: z.number().positive(),
  window_s: z.number().positive(),
  rss_max_mb: mb,
  p50_ms: z.number().positive(),
  transactions: z.number().int(),
  attestations: z.number().int(),
  cycle_ms: z.number().int(),
  first_error: z.string().optional(),
});

describe('npm run bench -- soak', () => {
  it('terminals attest and transact against one back-end: one JSON line, no errors', () => {
    const r = bench('soak', '--minutes', '0.15', '--terminals', '2');
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    // The soak runs for --minutes and ignores --seconds: its header names no time per measurement.
    expect(r.stderr).toMatch(/^bench soak: /m);
    expect(r.stderr).not.toContain('per measurement');
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ bench: 'soak', metric: 'environment' });
    const results = lines.filter((l) => l['metric'] === undefined);
    expect(results).toHaveLength(1);
    const line = SoakLine.parse(results[0]);
    expect(line).toMatchObject({ minutes: 0.15, terminals: 2, errors: 0, window_s: 4.5 });
    expect(line.first_error).toBeUndefined();
    // 9 s at one cycle per terminal every 4 s: each terminal ran at least two cycles, each two
    // attestations and one approved PIN transaction.
    expect(line.transactions).toBeGreaterThanOrEqual(4);
    expect(line.attestations).toBe(2 * line.transactions);
    if (process.platform === 'linux') {
      expect(line.rss_start_mb).not.toBeNull();
      expect(line.rss_max_mb ?? 0).toBeGreaterThanOrEqual(line.rss_end_mb ?? 0);
    }
  }, 240_000);

  it.each([
    [['--minutes', '0'], 'POS_ERR_CLI_INVALID_OPTION', /--minutes must be at least/],
    [['--minutes', 'soon'], 'POS_ERR_CLI_INVALID_OPTION', /--minutes must be a number/],
    [['--minutes'], 'POS_ERR_CLI_INVALID_OPTION', /--minutes takes a value/],
    [['--terminals', '2.5'], 'POS_ERR_CLI_INVALID_OPTION', /--terminals must be a whole number/],
    [['--terminals', '1000'], 'POS_ERR_CLI_INVALID_OPTION', /--terminals must be at most 200/],
    [['--workers', '2'], 'POS_ERR_CLI_UNKNOWN_OPTION', /not --workers/],
  ])('refuses %j with %s, before printing anything', (args, code, message) => {
    expectRefused(['soak', ...args], code, message);
  });
});
