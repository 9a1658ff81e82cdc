import type { PosErrorCode } from '@pos/shared';
import type { CliIo } from './io';

export const EXIT_OK = 0;
/** The input was read but refused (bad PIN block, bad key length...). */
export const EXIT_REJECTED = 1;
/** The command line itself is wrong (unknown command or option, missing option). */
export const EXIT_USAGE = 2;

const USAGE_CODES = new Set<string>([
  'POS_ERR_CLI_UNKNOWN_COMMAND',
  'POS_ERR_CLI_UNKNOWN_OPTION',
  'POS_ERR_CLI_MISSING_OPTION',
  'POS_ERR_CLI_INVALID_OPTION',
]);

/** Reports a failure as one line (`CODE: detail`, or a JSON object with --json) and returns the exit code. */
export function fail(io: CliIo, json: boolean, code: PosErrorCode, detail: string): number {
  if (json) io.out(JSON.stringify({ ok: false, code, detail }));
  else io.err(`pos-tools: ${code}: ${detail}`);
  return USAGE_CODES.has(code) ? EXIT_USAGE : EXIT_REJECTED;
}

/** Prints a success: the plain value, or a JSON object with --json. */
export function succeed(io: CliIo, json: boolean, plain: string, fields: Record<string, unknown>): number {
  io.out(json ? JSON.stringify({ ok: true, ...fields }) : plain);
  return EXIT_OK;
}
