/**
 * Command-line arguments are a trust boundary: node:util parseArgs splits them (strict: unknown
 * options are refused), then a zod schema checks every value. Failures become coded errors, never
 * stack traces.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { err, ok, type Result } from '@pos/shared';
import type { ToolsErrorCode } from '../errors';

export type CliResult<T extends object> = Result<T, ToolsErrorCode>;

type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export function parseOptions<S extends z.ZodType>(
  argv: readonly string[],
  options: OptionSpec,
  schema: S,
): CliResult<{ value: z.infer<S> }> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (e) {
    // parseArgs errors name the option; they never echo option values.
    const message = e instanceof Error ? e.message.replace(/\. To specify.*$/s, '') : 'bad arguments';
    return err('POS_ERR_CLI_UNKNOWN_OPTION', message);
  }
  const parsed = schema.safeParse(values);
  if (parsed.success) return ok({ value: parsed.data });
  const issue = parsed.error.issues[0];
  const name = issue?.path.map(String).join('.') ?? '';
  const flag = name === '' ? 'arguments' : `--${name}`;
  if (issue !== undefined && issue.path.length > 0 && values[String(issue.path[0])] === undefined) {
    return err('POS_ERR_CLI_MISSING_OPTION', `${flag} is required`);
  }
  return err('POS_ERR_CLI_INVALID_OPTION', `${flag}: ${issue?.message ?? 'invalid value'}`);
}
