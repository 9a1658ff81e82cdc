import { z } from 'zod';

/**
 * The one way benchmarks measure: run a body in batches until a time budget is spent, report
 * operations per second. Benchmarks report ratios against a baseline measured in the same run, so
 * results compare across machines; nothing here asserts a speed.
 */
export interface Rate {
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
}

export function measure(body: () => void, seconds: number, batch = 64): Rate {
  // Warm up: let the JIT settle before timing.
  const warmEnd = performance.now() + Math.min(200, seconds * 200);
  while (performance.now() < warmEnd) for (let i = 0; i < batch; i++) body();
  let ops = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < batch; i++) body();
    ops += batch;
    now = performance.now();
  }
  const elapsed = (now - start) / 1000;
  return { ops, seconds: elapsed, opsPerSec: ops / elapsed };
}

export type BenchLine = Record<string, string | number | boolean | null>;

export interface BenchContext {
  /** Seconds to spend on each measurement. */
  readonly seconds: number;
  /** Options after the benchmark name, already split into --name value pairs. */
  readonly options: Readonly<Record<string, string | boolean>>;
  /** Emits one result; the runner adds `"bench": "<name>"` and prints it as one JSON line. */
  emit(line: BenchLine): void;
}

export interface Benchmark {
  readonly name: string;
  readonly summary: string;
  /**
   * Whether the benchmark measures with `ctx.seconds` (the runner's --seconds, time per measurement).
   * The runner names the time per measurement only for those that do (soak runs for --minutes; halt
   * times one delivery).
   */
  readonly usesSeconds: boolean;
  /** Checks the options before anything runs or is printed; throws BenchOptionError. */
  check?(options: Readonly<Record<string, string | boolean>>): void;
  run(ctx: BenchContext): void | Promise<void>;
}

/** Options a benchmark refuses: the runner prints `bench: <code>: <message>` and exits 2. */
export class BenchOptionError extends Error {
  constructor(
    readonly code: 'POS_ERR_CLI_UNKNOWN_OPTION' | 'POS_ERR_CLI_INVALID_OPTION',
    message: string,
  ) {
    super(message);
    this.name = 'BenchOptionError';
  }
}

/** A numeric option given as text (`--name N`), bounded, with messages that name the option. */
export function numberOption(what: string, min: number, max: number, integer: boolean) {
  return z
    .string({ error: `--${what} takes a value` })
    .regex(/^\d+(\.\d+)?$/, `--${what} must be a number`)
    .transform(Number)
    .pipe(
      (integer ? z.number().int(`--${what} must be a whole number`) : z.number())
        .min(min, `--${what} must be at least ${min}`)
        .max(max, `--${what} must be at most ${max}`),
    );
}

/**
 * A benchmark's options parsed by its strict schema; an unknown option or a bad value is a
 * BenchOptionError (`takes` lists the options it knows, for the message).
 */
export function parseBenchOptions<S extends z.ZodType>(
  name: string,
  takes: string,
  schema: S,
  options: Readonly<Record<string, string | boolean>>,
): z.output<S> {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue?.code === 'unrecognized_keys')
    throw new BenchOptionError(
      'POS_ERR_CLI_UNKNOWN_OPTION',
      `${name} takes ${takes}, not --${String(issue.keys[0]).slice(0, 40)}`,
    );
  throw new BenchOptionError('POS_ERR_CLI_INVALID_OPTION', issue?.message ?? 'invalid options');
}
