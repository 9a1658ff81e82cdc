/** The CLI's process I/O: stdout lines, stderr lines, stdin (for keys in a TTY), signals. */
import type { CliIo } from './main';

export function processIo(): CliIo {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    stdin: process.stdin,
    onSignal: (cb) => {
      process.once('SIGINT', cb);
      process.once('SIGTERM', cb);
    },
  };
}
