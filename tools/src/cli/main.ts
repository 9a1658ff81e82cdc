/**
 * pos-tools: checks what a reader produced. Every failure is one line naming a POS_ERR_ code (or one
 * JSON object with --json) and a non-zero exit: 2 for a wrong command line, 1 for refused input.
 */
import { dukptDerive, dukptNextKsn, DUKPT_DERIVE_HELP, DUKPT_NEXT_KSN_HELP } from './dukpt';
import type { CliIo } from './io';
import { EXIT_OK, fail } from './output';
import { PINBLOCK_DECODE_HELP, PINBLOCK_ENCODE_HELP, pinblockDecode, pinblockEncode } from './pinblock';

interface Command {
  readonly help: string;
  readonly summary: string;
  readonly run: (argv: readonly string[], io: CliIo) => number;
}

const COMMANDS: Record<string, Record<string, Command>> = {
  pinblock: {
    encode: {
      help: PINBLOCK_ENCODE_HELP,
      summary: 'encode an ISO 9564-1 PIN block (formats 0-4)',
      run: pinblockEncode,
    },
    decode: {
      help: PINBLOCK_DECODE_HELP,
      summary: 'decode and check a PIN block, print the PIN',
      run: pinblockDecode,
    },
  },
  dukpt: {
    derive: {
      help: DUKPT_DERIVE_HELP,
      summary: 'derive a DUKPT working key from the BDK (AES or TDES)',
      run: dukptDerive,
    },
    'next-ksn': {
      help: DUKPT_NEXT_KSN_HELP,
      summary: 'the next valid KSN after a given one',
      run: dukptNextKsn,
    },
  },
};

function groupHelp(group: string): string {
  const cmds = COMMANDS[group] ?? {};
  const lines = Object.entries(cmds).map(
    ([name, c]) => `  pos-tools ${`${group} ${name}`.padEnd(16)} ${c.summary}`,
  );
  return `Usage: pos-tools ${group} <command> [options]\n\n${lines.join('\n')}\n\nRun \`pos-tools ${group} <command> --help\` for its options.`;
}

export const MAIN_HELP = `Usage: pos-tools <group> <command> [options]

Developer tools for checking what a card reader produced.

${Object.keys(COMMANDS)
  .map((g) => groupHelp(g).split('\n').slice(2, -2).join('\n'))
  .join('\n')}

Every command takes --help and --json. Errors: one line naming a POS_ERR_ code; exit status 2 for a
wrong command line, 1 for refused input. Codes are listed in docs/errors.md.`;

const isHelp = (arg: string | undefined): boolean => arg === '--help' || arg === '-h' || arg === 'help';

export function runCli(argv: readonly string[], io: CliIo): number {
  try {
    const [group, command, ...rest] = argv;
    const json = argv.includes('--json');
    if (group === undefined || isHelp(group)) {
      io.out(MAIN_HELP);
      return EXIT_OK;
    }
    const cmds = COMMANDS[group];
    if (cmds === undefined)
      return fail(
        io,
        json,
        'POS_ERR_CLI_UNKNOWN_COMMAND',
        `unknown command group '${printable(group)}'; groups: ${Object.keys(COMMANDS).join(', ')}`,
      );
    if (command === undefined || isHelp(command)) {
      io.out(groupHelp(group));
      return EXIT_OK;
    }
    const cmd = cmds[command];
    if (cmd === undefined) {
      return fail(
        io,
        json,
        'POS_ERR_CLI_UNKNOWN_COMMAND',
        `unknown command '${group} ${printable(command)}'; commands: ${Object.keys(cmds).join(', ')}`,
      );
    }
    if (rest.some((a) => a === '--help' || a === '-h')) {
      io.out(cmd.help);
      return EXIT_OK;
    }
    return cmd.run(rest, io);
  } catch (e) {
    // A bug, not bad input. One line, no stack trace, no argument values (they may be secrets).
    const name = e instanceof Error ? e.name : typeof e;
    return fail(io, argv.includes('--json'), 'POS_ERR_CLI_INTERNAL', `unexpected ${name}; please report it`);
  }
}

/** Echoes a command word only when it is short and plain; it is never a secret in the right place, but may be in the wrong one. */
function printable(word: string): string {
  return /^[a-z-]{1,20}$/.test(word) ? word : '<unprintable>';
}
