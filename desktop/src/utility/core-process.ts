/**
 * The utility process's entry (bundled to dist/electron/core-process.cjs; started by the main process
 * with `utilityProcess.fork`). Plain Node: no electron import. It runs the terminal core
 * (`createTerminalCore`, with the reader's device I/O) and speaks to main only over
 * `process.parentPort`, with the messages of protocol.ts parsed on both sides.
 */
import { createTerminalCore } from '../app/core';
import { runCoreProcess, type ParentPortLike } from './runner';

const port = (process as unknown as { parentPort?: ParentPortLike }).parentPort;
if (port === undefined) {
  console.error('core-process: not started as an Electron utility process (no parentPort); exiting');
  process.exitCode = 2;
} else {
  const p = port;
  const fatal = (): void => {
    // No error text is forwarded: it could quote anything the core held.
    p.postMessage({
      t: 'fatal',
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
      detail: 'The terminal core failed.',
    });
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  runCoreProcess({ port: p, createCore: createTerminalCore, exit: (code) => process.exit(code) });
}
