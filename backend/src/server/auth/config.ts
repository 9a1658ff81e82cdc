/** Settings of operator authentication (dashboard sessions, login throttling, password hashing, tokens). */
export interface AuthConfig {
  /** Dashboard session lifetime, seconds (absolute, from login; default 8 h). */
  readonly sessionTtlS: number;
  /**
   * Login attempts without a success for one username from one client address (IPv4 address or IPv6
   * /64) within `lockoutS` (default 5); further attempts from that address for that username are
   * refused, right password included, until the window has passed. Counted before the password check.
   */
  readonly maxLoginFailures: number;
  /** The window of `maxLoginFailures` and `maxLoginAttemptsPerUser`, seconds (default 15 min). */
  readonly lockoutS: number;
  /**
   * Login attempts for one username from all addresses together within `lockoutS` (default 50); past
   * it only an address that logged in to this account successfully within `knownAddressS` is let try.
   */
  readonly maxLoginAttemptsPerUser: number;
  /** How long a successful login makes its address known for that account, seconds (default 30 days). */
  readonly knownAddressS: number;
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
  maxLoginAttemptsPerUser: 50,
  knownAddressS: 30 * 24 * 3600,
  loginAttemptsPerIp: 20,
  loginWindowS: 5 * 60,
  scryptN: 2 ** 15,
  maxTokenLifetimeS: 366 * 24 * 3600,
};
