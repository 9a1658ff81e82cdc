/** Every collector, by measurement name (evidence measurement names where the back-end knows one). */
import type { MeasurementName } from '@pos/shared';
import type { Collector } from '../types';
import { appCodeHash } from './app-code';
import {
  devtoolsOpen,
  debuggerFlags,
  inspectorActive,
  nodeOptions,
  runAsNode,
  screenCaptureProtection,
  suspiciousEnv,
} from './runtime';
import { osInfo, remoteSession, secureBoot, tpmPresence, virtualMachine } from './environment';
import { executableHash } from './executable';
import { electronFuses } from './fuses';
import { buildKind, shellKind } from './shell';

/** Measurements that go into the evidence `measurements` list. */
export const MEASUREMENT_COLLECTORS = {
  fuses: electronFuses,
  'executable-hash': executableHash,
  debugger: debuggerFlags,
  inspector: inspectorActive,
  devtools: devtoolsOpen,
  'node-options': nodeOptions,
  'run-as-node': runAsNode,
  'suspicious-env': suspiciousEnv,
  os: osInfo,
  'virtual-machine': virtualMachine,
  'remote-session': remoteSession,
  'secure-boot': secureBoot,
  tpm: tpmPresence,
  'screen-capture-protection': screenCaptureProtection,
} as const satisfies Record<MeasurementName, Collector>;

/** Measurements that become other evidence fields (`app.codeHash`, `shell`, `app.build`). */
export const FIELD_COLLECTORS = {
  'app-code-hash': appCodeHash,
  'shell-kind': shellKind,
  'build-kind': buildKind,
} as const satisfies Record<string, Collector>;

export {
  appCodeHash,
  buildKind,
  debuggerFlags,
  devtoolsOpen,
  electronFuses,
  executableHash,
  inspectorActive,
  nodeOptions,
  osInfo,
  remoteSession,
  runAsNode,
  screenCaptureProtection,
  secureBoot,
  shellKind,
  suspiciousEnv,
  tpmPresence,
  virtualMachine,
};
