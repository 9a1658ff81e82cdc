/**
 * What pino must never print. Fastify's request serializer logs method, URL, host and address only;
 * these paths catch secrets anywhere a log call might put them (headers, bodies, error objects).
 */
const SECRET_KEYS = [
  'authorization',
  'pos-proof',
  'proof',
  'ticket',
  'jws',
  'evidence',
  'pin',
  'pinBlock',
  'pan',
  'cardData',
  'enrollmentCode',
  'password',
  'newPassword',
  'csrfToken',
  'x-csrf-token',
  'set-cookie',
  'cookie',
  'databaseUrl',
  'token',
  'adminToken',
  'privateKey',
  'masterKey',
  'key',
  'd',
];

export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["pos-proof"]',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'req.body',
  'body',
  ...SECRET_KEYS.map((k) => (k.includes('-') ? `["${k}"]` : k)),
  ...SECRET_KEYS.map((k) => (k.includes('-') ? `*["${k}"]` : `*.${k}`)),
  ...SECRET_KEYS.map((k) => (k.includes('-') ? `headers["${k}"]` : `headers.${k}`)),
];
