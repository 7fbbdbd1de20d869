import { SidecarError } from '../errors.ts';

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
/** Characters a server may decode or fold (RFC 3986 unreserved, and separators): they must travel as themselves. */
const MUST_BE_LITERAL = /[A-Za-z0-9\-._~/\\]/;

/**
 * Refuses any path that a server downstream could read differently from the
 * bytes we govern (the policy's `tool_name` is built from those bytes):
 * - `.` or `..` segments, after percent-decoding as many times as it keeps
 *   changing (`%2e`, `%252e`, ...), with `\` counted as a separator and
 *   `;params` cut from each segment: 400 `path_traversal`;
 * - decoded control characters (`/..%00/x` read as `/..` by a parser that
 *   stops at NUL), percent-encoded unreserved characters or separators
 *   (`%69mages` is `images` upstream), empty segments (`//`), `;` path
 *   parameters and `\`: 400 `bad_request_target`.
 */
export function assertSafePath(path: string): void {
  let decoded = path;
  let encodedLiteral = false;
  // Nothing to decode without a '%' (the usual path): the rounds are skipped.
  for (let round = 0; round < MAX_DECODE_ROUNDS && decoded.includes('%'); round++) {
    const next = decoded.replace(PERCENT, (_, hex: string) => {
      const char = String.fromCharCode(Number.parseInt(hex, 16));
      if (MUST_BE_LITERAL.test(char)) encodedLiteral = true;
      return char;
    });
    if (next === decoded) break;
    decoded = next;
  }
  if (CONTROL.test(decoded)) throw new SidecarError('bad_request_target', 'encoded control character in the path');
  if (decoded.includes('.')) {
    for (const raw of decoded.split(/[/\\]/)) {
      const semi = raw.indexOf(';');
      const segment = (semi === -1 ? raw : raw.slice(0, semi)).trim();
      if (segment === '.' || segment === '..') throw new SidecarError('path_traversal');
    }
  }
  if (encodedLiteral) throw new SidecarError('bad_request_target', 'percent-encoded unreserved character or separator in the path');
  if (path.includes('//')) throw new SidecarError('bad_request_target', 'empty path segment');
  if (path.includes(';') || path.includes('\\')) throw new SidecarError('bad_request_target', "';' or '\\' in the path");
}

/** What an `/llm/<provider>/<rest>` path names: shared by the LLM route and the debug dry run, so both govern the same event. */
export interface LlmTarget {
  readonly provider: string;
  /** The upstream path, `/` when the path ends after the provider. */
  readonly rest: string;
}

const PREFIX = '/llm/';

/** Splits a path that starts with `/llm/` (the caller checked) into provider and upstream path. */
export function splitLlmPath(path: string): LlmTarget {
  const afterPrefix = path.slice(PREFIX.length);
  const slash = afterPrefix.indexOf('/');
  return slash === -1 ? { provider: afterPrefix, rest: '/' } : { provider: afterPrefix.slice(0, slash), rest: afterPrefix.slice(slash) };
}

/** `openai.v1.chat.completions` for `/llm/openai/v1/chat/completions`: the event's tool name. */
export function llmToolName(provider: string, rest: string): string {
  // `rest` without its leading and trailing slashes, then '/' to '.' (no regex: this runs per request).
  let start = 0;
  let end = rest.length;
  while (start < end && rest.charCodeAt(start) === 0x2f) start++;
  while (end > start && rest.charCodeAt(end - 1) === 0x2f) end--;
  return `${provider}.${rest.slice(start, end).replaceAll('/', '.')}`;
}
