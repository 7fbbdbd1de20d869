import { SidecarError } from './errors.ts';

export interface Target {
  /** The path exactly as the client sent it (still percent-encoded). */
  readonly path: string;
  /** `?query` exactly as sent, or ''. */
  readonly search: string;
}

/**
 * Splits an origin-form request target. Absolute-form (`GET http://x/...`)
 * and asterisk-form targets are refused: the forward target is always built
 * from configuration and the path, never from anything the client names.
 */
export function parseTarget(rawUrl: string | undefined): Target {
  if (!rawUrl || rawUrl[0] !== '/') throw new SidecarError('bad_request_target');
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const search = q === -1 ? '' : rawUrl.slice(q);
  const hash = path.indexOf('#');
  if (hash !== -1) throw new SidecarError('bad_request_target');
  return { path, search };
}

const PERCENT = /%([0-9a-fA-F]{2})/g;
const MAX_DECODE_ROUNDS = 4;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Refuses any path a normaliser anywhere downstream could read differently
 * from the bytes we govern: an encoded control character, or a `.` or `..` segment, after percent-decoding as
 * many times as it keeps changing (`%2e`, `%252e`, ...), with `\` counted as a
 * separator and `;params` cut from each segment.
 */
export function assertSafePath(path: string): void {
  let decoded = path;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    const next = decoded.replace(PERCENT, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === decoded) break;
    decoded = next;
  }
  // A decoded control character (`%00`, `%0a`, ...) can cut or split the path
  // in a parser downstream (`/..%00/x` read as `/..`): never forwarded.
  if (CONTROL.test(decoded)) throw new SidecarError('bad_request_target', 'encoded control character in the path');
  if (!decoded.includes('.')) return;
  for (const raw of decoded.split(/[/\\]/)) {
    const semi = raw.indexOf(';');
    const segment = (semi === -1 ? raw : raw.slice(0, semi)).trim();
    if (segment === '.' || segment === '..') throw new SidecarError('path_traversal');
  }
}
