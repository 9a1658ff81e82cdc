/**
 * `npm run bench -- <name> [--seconds N] [--other value]`: the one runner for every benchmark.
 * Each result is one JSON line with `"bench": "<name>"`; progress and errors go to stderr.
 */
import { arch, cpus, platform } from 'node:os';
import { attestBench } from './attest';
import { cryptoBench } from './crypto';
import { haltBench } from './halt';
import { readerBench } from './reader';
import { soakBench } from './soak';
import { BenchOptionError, type Benchmark, type BenchLine } from './measure';

const BENCHMARKS: readonly Benchmark[] = [cryptoBench, readerBench, attestBench, haltBench, soakBench];

function usage(): string {
  return [
    'Usage: npm run bench -- <name> [--seconds N] [options]',
    '',
    'Benchmarks:',
    ...BENCHMARKS.map((b) => `  ${b.name.padEnd(12)} ${b.summary}`),
    '',
    'Each result is one JSON line with "bench":"<name>". --seconds sets the time per measurement (default 1).',
  ].join('\n');
}

function parseOptions(args: readonly string[]): Record<string, string | boolean> | string {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (!a.startsWith('--') || a.length === 2) return `unexpected argument '${a}'`;
    const next = args[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
    else {
      out[a.slice(2)] = next;
      i++;
    }
  }
  return out;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stderr.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const bench = BENCHMARKS.find((b) => b.name === name);
  if (bench === undefined) {
    process.stderr.write(
      `bench: POS_ERR_BENCH_UNKNOWN: no benchmark named '${name.slice(0, 40)}'\n${usage()}\n`,
    );
    return 2;
  }
  const options = parseOptions(rest);
  if (typeof options === 'string') {
    process.stderr.write(`bench: POS_ERR_CLI_UNKNOWN_OPTION: ${options}\n`);
    return 2;
  }
  const seconds = options['seconds'] === undefined ? 1 : Number(options['seconds']);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600) {
    process.stderr.write(
      'bench: POS_ERR_CLI_INVALID_OPTION: --seconds must be a number above 0 and at most 600\n',
    );
    return 2;
  }
  try {
    bench.check?.(options);
  } catch (e) {
    if (!(e instanceof BenchOptionError)) throw e;
    process.stderr.write(`bench: ${e.code}: ${e.message}\n`);
    return 2;
  }
  const emit = (line: BenchLine): void => {
    process.stdout.write(`${JSON.stringify({ bench: bench.name, ...line })}\n`);
  };
  const perMeasurement = bench.usesSeconds ? ` (${seconds}s per measurement)` : '';
  process.stderr.write(`bench ${bench.name}: ${bench.summary}${perMeasurement}\n`);
  emit({
    metric: 'environment',
    node: process.versions.node,
    platform: `${platform()}-${arch()}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
  });
  await bench.run({ seconds, options, emit });
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
