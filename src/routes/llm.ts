import type { Context } from 'hono';
import type { Dispatcher } from 'undici';
import type { Config } from '../config.ts';
import { SidecarError, upstreamError } from '../errors.ts';
import { forwardRequestHeaders, isJsonContentType } from '../headers.ts';
import { jsonShapeProblem } from '../json-keys.ts';
import type { Metrics } from '../metrics.ts';
import type { PolicyChain } from '../policy/chain.ts';
import { llmEvent } from '../policy/types.ts';
import { denialBody, errorStyleFor, type ErrorStyle } from '../providers.ts';
import type { ProxyEnv } from '../context.ts';
import { openHop, readBodyOrReply } from './hop.ts';
import { replyError, replySidecarError, targetOf } from './respond.ts';

const PREFIX = '/llm/';
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Far deeper than any LLM request (tool schemas included); bounds the policy's recursion. */
const MAX_JSON_DEPTH = 512;

/** How many times a (lower-case) header name occurs in node's raw header list. */
function countHeader(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}

/** True when the body, after an optional BOM and white space, starts like a JSON object or array. */
function looksLikeJson(body: Buffer): boolean {
  let i = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return body[i] === 0x7b || body[i] === 0x5b;
}

/**
 * The request body as a JSON object to govern; undefined when it is not one
 * (it is then forwarded after the local rules only). A body that is declared
 * as JSON, carries no Content-Type, or starts like JSON but is not strict
 * UTF-8 JSON is refused: a lenient parser upstream (BOM, NaN, trailing
 * commas) would read a request the policy never saw.
 */
function governable(body: Buffer, contentType: string | undefined, contentTypeCount: number): Record<string, unknown> | undefined {
  if (body.length === 0) return undefined;
  // node keeps the first of two Content-Types; the raw list forwards both.
  if (contentTypeCount > 1) throw new SidecarError('bad_request', 'more than one Content-Type');
  let parsed: unknown;
  let text: string;
  try {
    text = utf8.decode(body);
    parsed = JSON.parse(text);
  } catch {
    if (contentType === undefined || isJsonContentType(contentType) || looksLikeJson(body)) throw new SidecarError('invalid_json');
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  // The policy would judge the last of two same-named keys, another parser the
  // first; and the policy's recursive walks need a bounded depth.
  const problem = jsonShapeProblem(text, MAX_JSON_DEPTH);
  if (problem === 'duplicate key') throw new SidecarError('invalid_json', 'an object has a duplicate key');
  if (problem) throw new SidecarError('invalid_json', `nested deeper than ${MAX_JSON_DEPTH} levels`);
  return parsed as Record<string, unknown>;
}

function safeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : '(invalid name)';
}

/**
 * `/llm/<provider>/<path>`: reads the body (capped), governs a JSON object
 * body as a `pre_tool_use` event on channel `llm`, then forwards to the
 * configured upstream with the agent's own credentials and streams the answer
 * back raw.
 */
export function createLlmHandler(deps: {
  config: Pick<Config, 'upstreams' | 'maxBodyBytes'>;
  chain: PolicyChain;
  dispatcher: Dispatcher;
  metrics: Metrics;
}) {
  const { config, chain, dispatcher, metrics } = deps;

  return async function handleLlm(c: Context<ProxyEnv>): Promise<Response> {
    const target = targetOf(c);
    const afterPrefix = target.path.slice(PREFIX.length);
    const slash = afterPrefix.indexOf('/');
    const provider = slash === -1 ? afterPrefix : afterPrefix.slice(0, slash);
    const rest = slash === -1 ? '/' : afterPrefix.slice(slash);
    const upstream = config.upstreams.get(provider);
    if (!upstream) return replySidecarError(c, new SidecarError('unknown_provider', safeName(provider)));

    const record = c.env?.record;
    if (record) record.provider = provider;
    const style: ErrorStyle = errorStyleFor(provider);
    if (!chain.configured()) return replySidecarError(c, new SidecarError('governance_not_configured'), style);

    const req = c.env?.incoming;
    const res = c.env?.outgoing;
    if (!req || !res) throw new Error('the LLM route needs node bindings');

    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      return replySidecarError(c, new SidecarError('unsupported_content_encoding'), style);
    }

    const body = await readBodyOrReply(c, config.maxBodyBytes, style);
    if (body instanceof Response) return body;
    let toolInput: Record<string, unknown> | undefined;
    try {
      toolInput = governable(body, req.headers['content-type'], countHeader(req.rawHeaders, 'content-type'));
    } catch (err) {
      if (err instanceof SidecarError) return replySidecarError(c, err, style);
      throw err;
    }

    const hop = openHop(c, { route: 'llm', metrics, classify: upstreamError, style });
    // A body that is not a JSON object still meets the local rules (tool_name,
    // channel, default), so `default: deny` means deny; the gateway is asked
    // about JSON objects only, as the SDK does.
    const toolName = `${provider}.${rest.replace(/^\/+|\/+$/g, '').replaceAll('/', '.')}`;
    const result = await chain.evaluate(llmEvent(toolName, toolInput), body, { signal: hop.signal, remote: toolInput !== undefined });
    if (result.kind === 'aborted') return hop.abandoned();
    if (record) {
      record.decision = result.outcome;
      record.policyId = result.kind === 'unavailable' ? undefined : result.policyId || undefined;
    }
    if (result.kind === 'deny') return replyError(c, denialBody(result.policyId, result.reason), style);
    if (result.kind === 'unavailable') return replySidecarError(c, new SidecarError('policy_unavailable', result.reason), style);
    const forwardBody = result.body;

    const headers = forwardRequestHeaders(req.rawHeaders, req.headers.connection);
    const hadBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (hadBody) headers.push('content-length', String(forwardBody.length));

    const response = await hop.send(dispatcher.request({
      origin: upstream.origin,
      path: upstream.basePath + rest + target.search,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hadBody ? forwardBody : undefined,
      signal: hop.signal,
    }));
    if (response instanceof Response) return response;
    return hop.relay(response);
  };
}
