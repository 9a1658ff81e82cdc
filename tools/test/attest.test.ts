/**
 * `npm run bench -- attest`: a short run (2 terminals, --seconds 1) against a real back-end process
 * prints its result line with every field, the request floor beside it, and no error; bad options are
 * refused with a code before anything runs. Nothing here asserts a speed (the bench reports it).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bench, expectRefused, jsonLines } from './bench-helpers';

const rate = z.number().positive();
const AttestLine = z.strictObject({
  bench: z.literal('attest'),
  attestations_per_s: rate,
  p50_ms: rate,
  p99_ms: rate,
  bare_crypto_per_s: rate,
  ratio: rate,
  server_cpu_ms_per_attestation: rate.optional(),
  server_main_thread_ms_per_attestation: rate.optional(),
  server_main_thread_busy: z.number().min(0).optional(),
  generator_ms_per_attestation: z.number().min(0),
  floor_requests_per_s: rate,
  server_main_thread_ms_per_floor_request: rate.optional(),
  generator_ms_per_floor_request: z.number().min(0),
  floor_ratio: rate,
  floor_errors: z.number().int().positive().optional(),
  attestations: z.number().int().positive(),
  errors: z.number().int(),
  terminals: z.number().int(),
  workers: z.number().int(),
  seconds: z.number(),
  first_error: z.string().optional(),
});
const PreloadedLine = z.strictObject({
  bench: z.literal('attest'),
  metric: z.literal('preloaded'),
  terminals_in_store: z.number().int(),
  attestations_per_s: rate,
  small_store_attestations_per_s: rate,
  ratio_to_small_store: rate,
  p50_ms: rate,
  p99_ms: rate,
  server_main_thread_ms_per_attestation: rate.optional(),
  small_store_server_main_thread_ms_per_attestation: rate.optional(),
  attestations: z.number().int().positive(),
  errors: z.number().int(),
  preload_s: z.number().min(0),
  first_error: z.string().optional(),
});
const StoreLine = z.strictObject({
  bench: z.literal('attest'),
  metric: z.literal('store_size'),
  bytes_per_attestation: z.number().int().positive(),
  mb_per_million_attestations: z.number().int().positive(),
  attestations_stored: z.number().int().positive(),
  note: z.string(),
});

describe('npm run bench -- attest', () => {
  it('terminals attest against one back-end, then the request floor: result lines, no errors', () => {
    const r = bench('attest', '--seconds', '1', '--terminals-per-worker', '2');
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toContain('attest: measuring the request floor');
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ bench: 'attest', metric: 'environment' });
    const results = lines.filter((l) => l['metric'] === undefined);
    expect(results).toHaveLength(1);
    const line = AttestLine.parse(results[0]);
    expect(line).toMatchObject({ errors: 0, terminals: 2, workers: 1, seconds: 3 });
    expect(line.first_error).toBeUndefined();
    expect(line.floor_errors).toBeUndefined();
    // The two ratios are the quotients of the rates printed beside them (rounded to 3 places).
    expect(line.ratio).toBeCloseTo(line.attestations_per_s / line.bare_crypto_per_s, 2);
    expect(line.floor_ratio).toBeCloseTo(line.floor_requests_per_s / 2 / line.bare_crypto_per_s, 2);
    if (process.platform === 'linux') expect(line.server_main_thread_ms_per_floor_request).toBeDefined();
    // The store holds at least every counted attestation (plus warm-up ones and the enrollments).
    const store = StoreLine.parse(lines.find((l) => l['metric'] === 'store_size'));
    expect(store.attestations_stored).toBeGreaterThanOrEqual(line.attestations);
  }, 240_000);

  it('--preload-terminals N: the same terminals attest again with N more enrolled terminals in the store', () => {
    const r = bench('attest', '--seconds', '1', '--terminals-per-worker', '2', '--preload-terminals', '1000');
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(AttestLine.parse(lines.find((l) => l['metric'] === undefined))).toMatchObject({ errors: 0 });
    const line = PreloadedLine.parse(lines.find((l) => l['metric'] === 'preloaded'));
    // The bench's own 2 terminals plus the 1,000 added.
    expect(line).toMatchObject({ terminals_in_store: 1002, errors: 0 });
    expect(line.first_error).toBeUndefined();
    expect(line.ratio_to_small_store).toBeCloseTo(
      line.attestations_per_s / line.small_store_attestations_per_s,
      2,
    );
    // The store size is not reported after a preload (the added terminals would be most of it).
    expect(lines.some((l) => l['metric'] === 'store_size')).toBe(false);
  }, 240_000);

  it.each([
    [['--preload-terminals', '-1'], 'POS_ERR_CLI_INVALID_OPTION', /--preload-terminals must be a number/],
    [
      ['--preload-terminals', '9000000'],
      'POS_ERR_CLI_INVALID_OPTION',
      /--preload-terminals must be at most 5000000/,
    ],
    [
      ['--url', 'http://127.0.0.1:1', '--admin-token', 't', '--preload-terminals', '10'],
      'POS_ERR_CLI_INVALID_OPTION',
      /--preload-terminals needs the bench to start the server/,
    ],
    [['--workers', '0'], 'POS_ERR_CLI_INVALID_OPTION', /--workers must be at least 1/],
    [['--terminals-per-worker', '1.5'], 'POS_ERR_CLI_INVALID_OPTION', /must be a whole number/],
    [['--url', 'ftp://x'], 'POS_ERR_CLI_INVALID_OPTION', /--url must be an http\(s\) URL/],
    [['--url', 'http://127.0.0.1:1'], 'POS_ERR_CLI_INVALID_OPTION', /--url and --admin-token go together/],
    [
      ['--url', 'http://127.0.0.1:1', '--admin-token', 't', '--profile', '/tmp/p'],
      'POS_ERR_CLI_INVALID_OPTION',
      /--profile needs the bench to start the server/,
    ],
    [['--minutes', '1'], 'POS_ERR_CLI_UNKNOWN_OPTION', /not --minutes/],
  ])('refuses %j with %s, before printing anything', (args, code, message) => {
    expectRefused(['attest', ...args], code, message);
  });
});
