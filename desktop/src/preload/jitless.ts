/**
 * Zod compiles parsers with `new Function` when eval is allowed and probes for it by trying; under the
 * page's CSP (no 'unsafe-eval') the probe is refused and reported as a violation. The preload parses
 * every message, so it turns the compiler off before the first parse (imported first by index.ts).
 */
import { z } from 'zod';

z.config({ jitless: true });
