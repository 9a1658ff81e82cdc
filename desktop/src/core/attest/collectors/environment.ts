/**
 * The machine around the app.
 *
 * - os: platform, release and architecture (informative; also the evidence's `os`).
 * - virtual-machine (Linux): the DMI strings in /sys/class/dmi/id (sys_vendor, product_name,
 *   product_version, board_vendor, bios_vendor, chassis_vendor) matched against known hypervisors;
 *   none readable is `unknown`; other platforms `unknown`.
 * - remote-session: SSH_CONNECTION / SSH_CLIENT / SSH_TTY; an X11 DISPLAY naming a host (forwarding,
 *   `localhost:10.0`); on Windows SESSIONNAME `RDP-*` or a CLIENTNAME. The value names the variable,
 *   never its content (an address).
 * - secure-boot (Linux, UEFI): the last byte of efivars `SecureBoot-8be4df61-…` (4 attribute bytes,
 *   then 1 = on, 0 = off); no efivars (BIOS boot, or not mounted): `unknown`.
 * - tpm (Linux): /dev/tpm0 or /dev/tpmrm0, or an entry in /sys/class/tpm: ok; /sys/class/tpm present
 *   and empty: fail; neither shown: `unknown`.
 */
import type { Collector } from '../types';
import { fail, ok, unknown } from '../types';

export const osInfo: Collector = ({ proc }) =>
  Promise.resolve(ok('node:os', `${proc.platform} ${proc.release} ${proc.arch}`.slice(0, 512)));

export const DMI_DIR = '/sys/class/dmi/id';
export const DMI_FILES = [
  'sys_vendor',
  'product_name',
  'product_version',
  'board_vendor',
  'bios_vendor',
  'chassis_vendor',
] as const;
/** Lower-case substrings that name a hypervisor in DMI strings. */
export const VM_HINTS = [
  'qemu',
  'kvm',
  'vmware',
  'virtualbox',
  'innotek',
  'xen',
  'bochs',
  'parallels',
  'bhyve',
  'hyper-v',
  'virtual machine',
  'amazon ec2',
  'google compute engine',
  'openstack',
  'cloud hypervisor',
  'firecracker',
] as const;

export const virtualMachine: Collector = async ({ fs, proc }) => {
  if (proc.platform !== 'linux') return unknown('sysfs:dmi', 'only measured on Linux');
  const dec = new TextDecoder();
  let read = 0;
  const hits = new Set<string>();
  for (const f of DMI_FILES) {
    const b = await fs.readFile(`${DMI_DIR}/${f}`);
    if (b === undefined) continue;
    read++;
    const text = dec.decode(b).toLowerCase();
    for (const h of VM_HINTS) if (text.includes(h)) hits.add(h);
  }
  if (read === 0) return unknown('sysfs:dmi', 'no DMI strings readable');
  return hits.size > 0 ? fail('sysfs:dmi', [...hits].join(',')) : ok('sysfs:dmi');
};

export const remoteSession: Collector = ({ proc }) => {
  const env = proc.env;
  const hits: string[] = [];
  for (const v of ['SSH_CONNECTION', 'SSH_CLIENT', 'SSH_TTY']) if ((env[v] ?? '') !== '') hits.push(v);
  const display = env['DISPLAY'] ?? '';
  // ":0" is local; "host:10.0" (ssh -X sets localhost:10.0) is a display on another machine or a tunnel.
  if (/^[^:/]+:\d/.test(display)) hits.push('DISPLAY');
  if (proc.platform === 'win32') {
    if (/^RDP-/i.test(env['SESSIONNAME'] ?? '')) hits.push('SESSIONNAME');
    if ((env['CLIENTNAME'] ?? '') !== '') hits.push('CLIENTNAME');
  }
  return Promise.resolve(hits.length > 0 ? fail('env', hits.join(' ')) : ok('env'));
};

export const EFIVARS_DIR = '/sys/firmware/efi/efivars';
export const SECURE_BOOT_VAR = 'SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c';

export const secureBoot: Collector = async ({ fs, proc }) => {
  if (proc.platform !== 'linux') return unknown('efivars', 'only measured on Linux');
  const b = await fs.readFile(`${EFIVARS_DIR}/${SECURE_BOOT_VAR}`);
  if (b === undefined) return unknown('efivars', 'no SecureBoot variable shown');
  if (b.length !== 5) return unknown('efivars', 'unexpected SecureBoot variable size');
  return b[4] === 1 ? ok('efivars', true) : fail('efivars', false);
};

export const tpmPresence: Collector = async ({ fs, proc }) => {
  if (proc.platform !== 'linux') return unknown('devfs+sysfs', 'only measured on Linux');
  if ((await fs.exists('/dev/tpm0')) || (await fs.exists('/dev/tpmrm0'))) return ok('devfs', true);
  const entries = await fs.readdir('/sys/class/tpm');
  if (entries === undefined) return unknown('sysfs:tpm', 'no TPM class shown');
  return entries.some((e) => e.name.startsWith('tpm')) ? ok('sysfs:tpm', true) : fail('sysfs:tpm', false);
};
