/**
 * Zod compiles object parsers with `new Function` when the page allows eval, and probes for that by
 * trying it. Under the renderer's CSP (`script-src 'self'`, no 'unsafe-eval') the probe fails and is
 * reported as a CSP violation; `jitless` skips both. Imported first by main.tsx, before any schema is
 * built.
 */
import { z } from 'zod';

z.config({ jitless: true });
