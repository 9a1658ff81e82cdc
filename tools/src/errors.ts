/**
 * The registry of `POS_ERR_*` codes raised by @pos/tools (pos-tools and the benchmark runner).
 * Codes from @pos/shared (bad hex, bad PIN block, bad KSN...) pass through unchanged.
 * Every code here is documented in docs/errors.md; a test fails when the two disagree.
 */
export const TOOLS_ERRORS = {
  POS_ERR_CLI_UNKNOWN_COMMAND: 'The command is not one pos-tools knows; `pos-tools --help` lists them.',
  POS_ERR_CLI_UNKNOWN_OPTION: 'An option is not one this command takes, or is not in --name value form.',
  POS_ERR_CLI_MISSING_OPTION: 'A required option is missing.',
  POS_ERR_CLI_INVALID_OPTION:
    'An option has a value outside what it accepts, or options that do not go together.',
  POS_ERR_CLI_INTERNAL: 'An unexpected failure inside the tool (a bug); the input was not necessarily wrong.',
  POS_ERR_BENCH_UNKNOWN: 'The benchmark name is not one the runner knows; run `npm run bench` to list them.',
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type ToolsErrorCode = keyof typeof TOOLS_ERRORS;
