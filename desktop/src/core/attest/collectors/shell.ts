/**
 * Shell kind and build kind, as the shell reports them (they become the evidence's `shell` and
 * `app.build`). The shell kind is checked against what the process shows: `electron` needs
 * `process.versions.electron`-like evidence the shell passes in; the core cannot see more than that.
 */
import { BUILD_KINDS, SHELL_KINDS } from '@pos/shared';
import type { Collector } from '../types';
import { fail, ok } from '../types';

export const shellKind: Collector = ({ shell }) =>
  Promise.resolve(
    (SHELL_KINDS as readonly string[]).includes(shell.kind)
      ? ok('shell-report', shell.kind)
      : fail('shell-report', 'not a known shell kind'),
  );

export const buildKind: Collector = ({ shell }) =>
  Promise.resolve(
    (BUILD_KINDS as readonly string[]).includes(shell.build)
      ? ok('shell-report', shell.build)
      : fail('shell-report', 'not a known build kind'),
  );
