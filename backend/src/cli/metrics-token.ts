/**
 * The metrics scrape token of `pos-backend`: `--metrics-token-file FILE` or env
 * `POS_METRICS_TOKEN_FILE` (a file, so the token is not in the process list), parsed before the
 * service starts; and the start-up warning when /metrics would be public (a non-loopback address, or
 * behind a reverse proxy).
 * docs/monitoring.md "Protecting /metrics".
 */
import { BlockList, isIP } from 'node:net';
import { METRICS_TOKEN_MAX_BYTES, MetricsTokenFileSchema } from '../server/metrics';
import { othersMayAccess, readSmallSecretFile, sharedSecretFileWarning } from './secret-file';

export const METRICS_TOKEN_FILE_ENV = 'POS_METRICS_TOKEN_FILE';

/** Where the token comes from: the option wins over the environment; none: /metrics is public. */
export function chooseMetricsTokenFile(
  option: string | undefined,
  env: NodeJS.ProcessEnv,
): { readonly path: string; readonly via: string } | undefined {
  if (option !== undefined) return { path: option, via: '--metrics-token-file' };
  const fromEnv = env[METRICS_TOKEN_FILE_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : { path: fromEnv, via: METRICS_TOKEN_FILE_ENV };
}

/**
 * Reads and parses the token file: a regular file of at most 1 KiB holding one line of 32 to 1024
 * visible ASCII characters (a final newline allowed), read through one descriptor (secret-file.ts). A
 * string starting `POS_ERR_` is the error line: it names the option and the path, never the file's
 * contents. `warnings`: a file with group or world permission bits is used, with one warning line.
 */
export function readMetricsTokenFile(source: {
  readonly path: string;
  readonly via: string;
}): { readonly token: string; readonly warnings: readonly string[] } | string {
  const name = `the ${source.via} file ${source.path}`;
  const read = readSmallSecretFile(source.path, METRICS_TOKEN_MAX_BYTES);
  if (!read.ok) return `POS_ERR_METRICS_TOKEN_INVALID: ${name} ${read.detail}`;
  const parsed = MetricsTokenFileSchema.safeParse(read.text);
  if (!parsed.success)
    return `POS_ERR_METRICS_TOKEN_INVALID: ${name} does not hold one line of 32 to ${METRICS_TOKEN_MAX_BYTES} visible ASCII characters (no spaces); make one with: openssl rand -hex 32 > FILE`;
  const warnings = othersMayAccess(read.mode)
    ? [sharedSecretFileWarning(`the ${source.via} file`, source.path)]
    : [];
  return { token: parsed.data, warnings };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether a --host value listens on loopback only: 127.0.0.0/8, ::1 (also IPv4-mapped), localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (family === 4) return LOOPBACK.check(host, 'ipv4');
  if (family === 6) return LOOPBACK.check(host, 'ipv6');
  return false;
}

/**
 * The start-up warning when /metrics has no token and others may reach it (outside --dev): the service
 * listens beyond loopback, or it is behind a reverse proxy (--trust-proxy), which may pass /metrics on
 * from anyone although the service itself listens on loopback. Undefined: no warning.
 */
export function metricsPublicWarning(options: {
  readonly host: string;
  readonly trustProxy: boolean;
}): string | undefined {
  const reasons = [
    isLoopbackHost(options.host) ? undefined : `listens on ${options.host} (not loopback only)`,
    options.trustProxy ? 'is behind a reverse proxy (--trust-proxy) that may pass /metrics on' : undefined,
  ].filter((reason) => reason !== undefined);
  if (reasons.length === 0) return undefined;
  return `WARNING: /metrics is public: the service ${reasons.join(' and ')} without a metrics scrape token, so anyone who reaches it reads its metrics; protect it with --metrics-token-file FILE (or ${METRICS_TOKEN_FILE_ENV}) and scrape with that token (docs/monitoring.md "Protecting /metrics").`;
}
