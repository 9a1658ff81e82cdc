/** Settings of operator authentication (dashboard sessions, login throttling, password hashing, tokens). */
export interface AuthConfig {
  /** Dashboard session lifetime, seconds (absolute, from login; default 8 h). */
  readonly sessionTtlS: number;
  /** Failed logins in a row that lock an account (default 5). */
  readonly maxLoginFailures: number;
  /** How long a locked account refuses every login, right password included, seconds (default 15 min). */
  readonly lockoutS: number;
  /** Login attempts per client address per window (default 20), across accounts. */
  readonly loginAttemptsPerIp: number;
  /** The window of `loginAttemptsPerIp`, seconds (default 5 min). */
  readonly loginWindowS: number;
  /** scrypt cost N for new password hashes (power of two; default 2^15, with r = 8, p = 1: 32 MiB). */
  readonly scryptN: number;
  /** The longest lifetime an API token may be given, seconds (default 366 days). */
  readonly maxTokenLifetimeS: number;
}

export const DEFAULT_AUTH_CONFIG: AuthConfig = {
  sessionTtlS: 8 * 3600,
  maxLoginFailures: 5,
  lockoutS: 15 * 60,
  loginAttemptsPerIp: 20,
  loginWindowS: 5 * 60,
  scryptN: 2 ** 15,
  maxTokenLifetimeS: 366 * 24 * 3600,
};
