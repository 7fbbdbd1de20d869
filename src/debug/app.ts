import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { describeConfig, isLoopbackHost, type Config } from '../config.ts';
import { ERROR_TABLE, SidecarError, isSidecarError, type ErrorCode } from '../errors.ts';
import { isJsonContentType } from '../http/headers.ts';
import type { IdentityStore } from '../identity/store.ts';
import { parseStrictObject } from '../json/keys.ts';
import { LOG_LEVELS, type Logger } from '../log.ts';
import { assertSafePath, llmToolName, parseTarget, splitLlmPath } from '../http/path.ts';
import { VERSION, type Metrics } from '../metrics.ts';
import type { PolicyChain } from '../policy/chain.ts';
import { MAX_JSON_DEPTH } from '../policy/inspect.ts';
import type { PolicyStore } from '../policy/store.ts';
import type { History, HistoryFilter } from './history.ts';
import { DEFAULT_LEVEL_TTL_SECONDS, MAX_LEVEL_TTL_SECONDS, isLogLevel, type LevelState, type LevelSwitch } from './log-level.ts';
import { PAGE_CSP, PAGE_HTML } from './page.ts';
import { dryRunResponse, type ResponseDryRunInput } from './response-dry-run.ts';
import type { Tap } from './tap.ts';
import { joinParts } from '../json/edits.ts';

type DebugEnv = { Bindings: Partial<HttpBindings> };

/** The dry run's envelope is small JSON around a request body; the proxy's own cap, plus room for the envelope. */
const ENVELOPE_ALLOWANCE = 64 * 1024;

export interface DebugDeps {
  config: Config;
  chain: PolicyChain;
  identity: IdentityStore;
  policy: PolicyStore | undefined;
  history: History;
  tap: Tap;
  levels: LevelSwitch;
  logger: Logger;
  /** When the sidecar started (ISO 8601): the app itself is made on the listener's first request. */
  startedAt: string;
  /** Counts response dry runs in firstops_policy_decisions_total as request ones are (the chain counts those). */
  metrics?: Metrics | undefined;
}

function fail(c: Context<DebugEnv>, code: ErrorCode, detail?: string): Response {
  const { status, message } = ERROR_TABLE[code];
  return c.json({ error: { code, message: detail ? `${message}: ${detail}` : message } }, status as 400);
}

const EVALUATE_FIELDS = ['path', 'body', 'remote', 'response', 'response_stream'];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The dry run's mode: undefined for a request (`body`, or nothing), else the
 * response to judge. One mode per call; a response is judged locally only.
 */
function responseDryRunInput(body: unknown, remote: unknown, response: unknown, stream: unknown): ResponseDryRunInput | undefined {
  if (response === undefined && stream === undefined) return undefined;
  if (body !== undefined) throw new SidecarError('debug_invalid_input', 'send body (a request dry run) or response / response_stream (a response dry run), not both');
  if (response !== undefined && stream !== undefined) throw new SidecarError('debug_invalid_input', 'send response (a JSON answer) or response_stream (its SSE events), not both');
  if (remote === true) throw new SidecarError('debug_invalid_input', 'response dry runs are local-only: the policy file\'s response rules judge them, EvaluateHook is not asked (leave remote out or false)');
  if (response !== undefined) {
    if (!isPlainObject(response)) throw new SidecarError('debug_invalid_input', 'response must be a JSON object (an upstream\'s non-streamed answer)');
    return { kind: 'json', response };
  }
  if (typeof stream !== 'string') throw new SidecarError('debug_invalid_input', 'response_stream must be a string (SSE events as an upstream streams them)');
  return { kind: 'stream', events: stream };
}

function levelJson(state: LevelState): Record<string, unknown> {
  return { level: state.level, configured: state.configured, revert_at: state.revertAt ?? null };
}

/** Reads at most `max` bytes of the request body; a longer one is a SidecarError. */
async function readCapped(request: Request, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > max) throw new SidecarError('body_too_large');
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

/** The body of a POST/PUT as a JSON object: declared as JSON (a cross-site form cannot), strict UTF-8, no duplicate keys. */
async function jsonObject(c: Context<DebugEnv>, max: number): Promise<Record<string, unknown>> {
  if (!isJsonContentType(c.req.header('content-type'))) throw new SidecarError('debug_invalid_input', 'send Content-Type: application/json');
  const parsed = parseStrictObject(await readCapped(c.req.raw, max), MAX_JSON_DEPTH);
  if ('value' in parsed) return parsed.value;
  const why = {
    not_json: 'the body is not UTF-8 JSON',
    not_object: 'the body must be a JSON object',
    'duplicate key': 'an object has a duplicate key',
    'nested too deeply': `nested deeper than ${MAX_JSON_DEPTH} levels`,
  }[parsed.problem];
  throw new SidecarError('debug_invalid_input', why);
}

function historyFilter(query: Record<string, string>, capacity: number): HistoryFilter {
  const filter: { -readonly [K in keyof HistoryFilter]: HistoryFilter[K] } = {};
  for (const key of Object.keys(query)) {
    if (!['status', 'decision', 'provider', 'limit'].includes(key)) throw new SidecarError('debug_invalid_input', `unknown filter ${JSON.stringify(key.slice(0, 40))} (status, decision, provider, limit)`);
  }
  const integer = (name: 'status' | 'limit', min: number, max: number): number | undefined => {
    const raw = query[name];
    if (raw === undefined) return undefined;
    const n = /^\d{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(n >= min && n <= max)) throw new SidecarError('debug_invalid_input', `${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  filter.status = integer('status', 100, 599);
  filter.limit = integer('limit', 1, capacity);
  for (const name of ['decision', 'provider'] as const) {
    const raw = query[name];
    if (raw === undefined) continue;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) throw new SidecarError('debug_invalid_input', `${name} must be 1 to 64 letters, digits, '_', '.' or '-'`);
    filter[name] = raw;
  }
  return filter;
}

/**
 * The debug listener (`kubectl port-forward`): recent requests and a live
 * tap, the configuration in force, a policy dry run, a run-time log level,
 * and a page showing all of it. It binds to loopback unless told otherwise,
 * answers only Host names that are loopback (so a web page cannot reach it by
 * DNS rebinding), and takes writes only as `application/json` (so a
 * cross-site form cannot post to it).
 */
export function createDebugApp(deps: DebugDeps): Hono<DebugEnv> {
  const { config, chain, identity, policy, history, tap, levels, startedAt } = deps;
  const app = new Hono<DebugEnv>();

  app.use('*', async (c, next) => {
    if (!config.debugAllowRemote) {
      const host = c.env?.incoming?.headers.host ?? '';
      const hostname = host.replace(/:\d*$/, '');
      if (!isLoopbackHost(hostname)) return fail(c, 'debug_host_refused');
    }
    await next();
    c.header('cache-control', 'no-store');
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'no-referrer');
  });

  app.get('/', (c) => c.html(PAGE_HTML, 200, { 'content-security-policy': PAGE_CSP, 'x-frame-options': 'DENY' }));

  app.get('/debug/requests', (c) => c.json({ requests: history.list(historyFilter(c.req.query(), history.capacity)) }));

  app.get('/debug/requests/stream', (c) => {
    const res = c.env?.outgoing;
    if (!res) throw new Error('the debug stream needs node bindings');
    if (tap.full) return fail(c, 'debug_stream_full');
    tap.attach(res);
    return RESPONSE_ALREADY_SENT;
  });

  app.get('/debug/config', (c) => {
    const id = identity.status();
    const p = policy?.status();
    return c.json({
      config: describeConfig(config),
      identity: {
        dir: id.dir,
        loaded: id.agentId !== undefined,
        agent_id: id.agentId ?? null,
        jkt: id.jkt ?? null,
        loaded_at: id.loadedAt ?? null,
        last_reload: id.lastReload ?? null,
      },
      policy: p
        ? {
            file: p.file,
            sha256: p.sha256,
            rule_ids: p.ruleIds,
            response_rule_ids: policy?.current().responses?.ruleIds ?? [],
            loaded_at: p.loadedAt,
            last_reload: p.lastReload ?? null,
            last_reload_error: p.lastReload?.result === 'failure' ? p.lastReload.error : null,
          }
        : null,
      upstreams: Object.fromEntries([...config.upstreams].map(([name, u]) => [name, u.origin + u.basePath])),
      fail_mode: config.failMode,
      remote_policy: config.remotePolicy,
      response_remote: config.responseRemote,
      log: levelJson(levels.state()),
      history: { capacity: history.capacity, size: history.size, stream_readers: tap.size },
      versions: { sidecar: VERSION, node: process.versions.node, openssl: process.versions.openssl },
      started_at: startedAt,
    });
  });

  app.post('/debug/evaluate', async (c) => {
    const input = await jsonObject(c, config.maxBodyBytes + ENVELOPE_ALLOWANCE);
    for (const key of Object.keys(input)) {
      if (!EVALUATE_FIELDS.includes(key)) throw new SidecarError('debug_invalid_input', `unknown field ${JSON.stringify(key.slice(0, 40))} (${EVALUATE_FIELDS.join(', ')})`);
    }
    const { path, body, remote, response, response_stream: responseStream } = input;
    if (typeof path !== 'string' || !path.startsWith('/llm/')) throw new SidecarError('debug_invalid_input', 'path must be a string /llm/<provider>/...');
    if (body !== undefined && !isPlainObject(body)) {
      throw new SidecarError('debug_invalid_input', 'body must be a JSON object (the request body to govern) or left out');
    }
    if (remote !== undefined && typeof remote !== 'boolean') throw new SidecarError('debug_invalid_input', 'remote must be true or false');
    const responseInput = responseDryRunInput(body, remote, response, responseStream);
    // The same checks and names as the proxy route, so the dry run judges the request the route would.
    let target;
    try {
      target = parseTarget(path);
      assertSafePath(target.path);
    } catch (err) {
      if (isSidecarError(err)) throw new SidecarError('debug_invalid_input', `path: ${err.message}`);
      throw err;
    }
    const { provider, rest } = splitLlmPath(target.path);
    if (!config.upstreams.has(provider)) throw new SidecarError('debug_invalid_input', `no upstream is configured for provider ${JSON.stringify(provider.slice(0, 64))}`);
    if (responseInput) {
      // The response rules of the loaded policy, as the route has them (none without a policy file).
      return c.json(await dryRunResponse({ provider, toolName: llmToolName(provider, rest), rules: policy?.current().responses, input: responseInput, metrics: deps.metrics }));
    }
    if (!chain.configured()) return fail(c, 'governance_not_configured');

    // The request the route would see: the body as JSON bytes, or no body at all.
    const toolName = llmToolName(provider, rest);
    const result = await chain.evaluate(
      {
        toolName,
        channel: 'llm',
        body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)),
        contentType: body === undefined ? undefined : 'application/json',
        contentTypeCount: body === undefined ? 0 : 1,
      },
      { remote: remote === true, signal: c.req.raw.signal },
    );
    if (result.kind === 'aborted') return fail(c, 'debug_invalid_input', 'the request was abandoned');
    if (result.kind === 'refused') throw new SidecarError('debug_invalid_input', `the proxy would refuse this body (${result.code}${result.detail ? `: ${result.detail}` : ''})`);
    const answer: Record<string, unknown> = {
      phase: 'request',
      tool_name: toolName,
      decision: result.outcome,
      policy_id: result.kind === 'unavailable' ? null : result.policyId || null,
      reason: result.reason || null,
      source: result.source ?? null,
    };
    if (result.kind === 'unavailable') answer.code = result.code;
    if (result.kind === 'forward' && result.outcome === 'modify') {
      // Both sources produce a JSON object here (the remote answer is checked when parsed); shown as text otherwise.
      const text = joinParts(result.body).toString('utf8');
      try {
        answer.body = JSON.parse(text);
      } catch {
        answer.body_text = text;
      }
    }
    return c.json(answer);
  });

  app.get('/debug/log-level', (c) => c.json(levelJson(levels.state())));

  app.put('/debug/log-level', async (c) => {
    const input = await jsonObject(c, 4096);
    const { level, ttl_seconds: ttl } = input;
    for (const key of Object.keys(input)) {
      if (key !== 'level' && key !== 'ttl_seconds') throw new SidecarError('debug_invalid_input', `unknown field ${JSON.stringify(key.slice(0, 40))} (level, ttl_seconds)`);
    }
    if (!isLogLevel(level)) throw new SidecarError('debug_invalid_input', `level must be one of ${LOG_LEVELS.join(', ')}`);
    if (ttl !== undefined && !(Number.isSafeInteger(ttl) && (ttl as number) >= 1 && (ttl as number) <= MAX_LEVEL_TTL_SECONDS)) {
      throw new SidecarError('debug_invalid_input', `ttl_seconds must be an integer from 1 to ${MAX_LEVEL_TTL_SECONDS}`);
    }
    return c.json(levelJson(levels.set(level, (ttl as number | undefined) ?? DEFAULT_LEVEL_TTL_SECONDS)));
  });

  app.notFound((c) => fail(c, 'debug_not_found'));
  app.onError((err, c) => {
    if (isSidecarError(err)) return fail(c, err.code, err.detail);
    deps.logger.error({ component: 'debug', err: { message: err.message } }, 'unhandled error on the debug listener');
    return fail(c, 'internal');
  });
  return app;
}
