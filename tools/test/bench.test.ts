import { describe, expect, it } from 'vitest';
import { bench, jsonLines } from './bench-helpers';

describe('npm run bench', () => {
  it('crypto: every result is one JSON line naming the benchmark, with rates beside the AES baseline', () => {
    const r = bench('crypto', '--seconds', '0.01');
    expect(r.status, r.stderr).toBe(0);
    // crypto measures with --seconds, so the runner's header names it.
    expect(r.stderr).toMatch(/^bench crypto: .* \(0\.01s per measurement\)$/m);
    const lines = jsonLines(r.stdout);
    for (const line of lines) expect(line['bench']).toBe('crypto');
    const metrics = lines.map((l) => l['metric']);
    expect(metrics).toEqual(
      expect.arrayContaining([
        'environment',
        'aes128_block',
        'pinblock_format4_encode',
        'dukpt_aes128_host_pin_key',
        'dukpt_aes128_device_transaction',
      ]),
    );
    for (const line of lines.filter(
      (l) => String(l['metric']).startsWith('pinblock') || String(l['metric']).startsWith('dukpt_aes'),
    )) {
      expect(line['ops_per_sec']).toBeGreaterThan(0);
      expect(line['aes128_block_ops_per_sec']).toBeGreaterThan(0);
      expect(line['ratio_to_aes_block']).toBeCloseTo(
        Number(line['ops_per_sec']) / Number(line['aes128_block_ops_per_sec']),
        3,
      );
    }
  });

  it('refuses an unknown benchmark with a code and lists the known ones', () => {
    const r = bench('nope');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/POS_ERR_BENCH_UNKNOWN/);
    expect(r.stderr).toMatch(/crypto/);
  });

  it('refuses a bad --seconds', () => {
    const r = bench('crypto', '--seconds', 'soon');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/POS_ERR_CLI_INVALID_OPTION/);
  });
});
