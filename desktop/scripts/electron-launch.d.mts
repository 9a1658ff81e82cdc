/** Types of electron-launch.mjs (plain JavaScript: scripts/start.mjs imports it without TypeScript). */
export type ElectronDetection = { found: true; executable: string } | { found: false; why: string };

export function detectElectron(o: {
  env?: Readonly<Record<string, string | undefined>>;
  electronDir: string;
  exists?: (p: string) => boolean;
  read?: (p: string) => string;
}): ElectronDetection;

export function chooseShell(o: {
  shell?: string;
  headless?: boolean;
  electron: { found: boolean; why?: string };
}): { ok: true; shell: 'electron' | 'browser' | 'headless'; why: string } | { ok: false; why: string };

export function electronCommand(o: {
  executable: string;
  mainBundle: string;
  dataDir: string;
  env?: Readonly<Record<string, string | undefined>>;
}): { command: string; args: string[]; env: Record<string, string | undefined> };
