/**
 * The app:// scheme: maps `app://terminal/<path>` to a file under the built renderer directory and
 * answers it with its MIME type and the security headers. Pure except for the injected file reads, so
 * the path rules are tested under plain Node.
 *
 * Refused: another host, credentials or a port (400); a method other than GET/HEAD (405); encoded
 * slashes, backslashes, NUL, `.`/`..` segments, hidden (dot) files or anything resolving outside the
 * renderer directory, also through a symlink (403); a directory, a missing file or an extension
 * without a known type (404). `/` is `/index.html`.
 */
import { extname, join, resolve, sep } from 'node:path';
import { APP_HOST, APP_SCHEME } from './channels';
import { securityHeaders } from './security';

/** The types the UI's build produces; anything else is not served. */
export const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
};

export type AppPath =
  { ok: true; path: string; mime: string } | { ok: false; status: 400 | 403 | 404; why: string };

const bad = (status: 400 | 403 | 404, why: string): AppPath => ({ ok: false, status, why });

/** The file an app:// URL names under `rendererDir`, or why it is refused. */
export function resolveAppPath(url: string, rendererDir: string): AppPath {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad(400, 'not a URL');
  }
  if (u.protocol !== `${APP_SCHEME}:` || u.hostname !== APP_HOST) return bad(400, 'not the app origin');
  if (u.port !== '' || u.username !== '' || u.password !== '') return bad(400, 'not the app origin');
  const raw = u.pathname;
  if (/%(2f|5c|00)/i.test(raw) || raw.includes('\\')) return bad(403, 'encoded separator or NUL');
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return bad(400, 'bad percent-encoding');
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return bad(403, 'NUL or backslash');
  const rel = decoded === '/' || decoded === '' ? 'index.html' : decoded.replace(/^\/+/, '');
  if (rel.endsWith('/')) return bad(404, 'a directory');
  const segments = rel.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') return bad(403, 'empty, . or .. segment');
    if (s.startsWith('.')) return bad(403, 'hidden file');
  }
  const root = resolve(rendererDir);
  const path = resolve(join(root, ...segments));
  if (!path.startsWith(root + sep)) return bad(403, 'outside the renderer directory');
  const mime = MIME_TYPES[extname(path).toLowerCase()];
  if (mime === undefined) return bad(404, 'no type for this extension');
  return { ok: true, path, mime };
}

export interface AppFiles {
  /** The file's bytes, or undefined when it is missing, a directory or unreadable. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** The path with every symlink resolved, or undefined when it does not exist. */
  realpath(path: string): Promise<string | undefined>;
}

export interface AppResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | null;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
};

function refusal(status: number): AppResponse {
  return {
    status,
    headers: { ...securityHeaders(), 'Content-Type': 'text/plain; charset=utf-8' },
    body: new TextEncoder().encode(STATUS_TEXT[status] ?? 'Error'),
  };
}

/** Answers one request of the app:// scheme. */
export async function serveApp(
  request: { url: string; method: string },
  rendererDir: string,
  files: AppFiles,
): Promise<AppResponse> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return refusal(405);
  const r = resolveAppPath(request.url, rendererDir);
  if (!r.ok) return refusal(r.status);
  // A symlink inside the directory must not lead out of it.
  const [realRoot, realFile] = await Promise.all([
    files.realpath(resolve(rendererDir)),
    files.realpath(r.path),
  ]);
  if (realRoot === undefined || realFile === undefined) return refusal(404);
  if (!realFile.startsWith(realRoot + sep)) return refusal(403);
  const body = await files.readFile(r.path);
  if (body === undefined) return refusal(404);
  return {
    status: 200,
    headers: { ...securityHeaders(), 'Content-Type': r.mime, 'Content-Length': String(body.length) },
    body: request.method === 'HEAD' ? null : body,
  };
}
