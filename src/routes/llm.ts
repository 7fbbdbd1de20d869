import type { Dispatcher } from 'undici';
import type { Config } from '../config.ts';
import { SidecarError } from '../errors.ts';
import { upstreamError } from '../egress/failures.ts';
import { forwardRequestHeaders } from '../http/headers.ts';
import type { Metrics } from '../metrics.ts';
import type { PolicyChain } from '../policy/chain.ts';
import { llmToolName, splitLlmPath } from '../http/path.ts';
import { denialBody, errorStyleFor, type ErrorStyle } from '../http/providers.ts';
import type { Exchange } from '../http/context.ts';
import { joinParts, partsLength, undiciBody } from '../json/edits.ts';
import type { BodyBudget, BudgetShare } from '../memory/budget.ts';
import { ADMISSION_FACTOR, SMALL_BODY_BYTES } from '../memory/plan.ts';
import { genAiMetricsFor } from '../usage/metrics.ts';
import { openUsageTap } from '../usage/tap.ts';
import { compileResponseRules, type ResponseRules } from '../response/index.ts';
import type { Logger } from '../log.ts';
import type { RemoteEvaluator } from '../policy/types.ts';
import { openHop, readBodyOrReply } from './hop.ts';
import { relayGoverned } from './llm-response.ts';
import { createResponseRemote } from '../response/remote.ts';
import { Reply, replyError, replySidecarError } from './respond.ts';

const NO_RESPONSE_RULES = compileResponseRules(undefined);

/** How many times a (lower-case) header name occurs in node's raw header list. */
function countHeader(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
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
  config: Pick<Config, 'upstreams' | 'maxBodyBytes' | 'usageMetrics' | 'policyOffloadBytes' | 'failMode'>;
  chain: PolicyChain;
  dispatcher: Dispatcher;
  metrics: Metrics;
  budget: BodyBudget;
  /** The loaded policy's response rules (issue 22), if any: answers are relayed through them. */
  responseRules?: () => ResponseRules | undefined;
  /** EvaluateHook for answers (FIRSTOPS_RESPONSE_REMOTE=on and an identity loaded), else undefined. */
  responseRemote?: () => RemoteEvaluator | undefined;
  logger?: Logger;
}) {
  const { config, chain, dispatcher, metrics, budget, logger } = deps;
  // Remote response decisions are logged: without a logger they would be skipped without a word.
  if (deps.responseRemote && !logger) throw new TypeError('createLlmHandler: responseRemote needs a logger');
  const genAi = genAiMetricsFor(metrics.registry);

  return async function handleLlm(x: Exchange): Promise<Reply> {
    // The body's memory is this request's until its answer is over.
    const share = budget.open();
    try {
      return await governAndForward(x, share);
    } finally {
      share.release();
    }
  };

  async function governAndForward(x: Exchange, share: BudgetShare): Promise<Reply> {
    const { req, record, target } = x;
    const { provider, rest } = splitLlmPath(target.path);
    const upstream = config.upstreams.get(provider);
    if (!upstream) return replySidecarError(x, new SidecarError('unknown_provider', safeName(provider)));

    record.provider = provider;
    const style: ErrorStyle = errorStyleFor(provider);
    if (!chain.configured()) return replySidecarError(x, new SidecarError('governance_not_configured'), style);

    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      return replySidecarError(x, new SidecarError('unsupported_content_encoding'), style);
    }

    let body: Buffer | Reply | undefined = await readBodyOrReply(x, {
      maxBytes: config.maxBodyBytes,
      budget: { budget, share, factor: ADMISSION_FACTOR },
      // A body a worker will inspect is read into shared memory.
      sharedAbove: config.policyOffloadBytes,
      route: 'llm',
      metrics,
    }, style);
    if (body instanceof Reply) return body;

    const hop = openHop(x, { route: 'llm', metrics, classify: upstreamError, style });
    // The event's tool name, for the request's evaluation and, when asked, the answer's.
    const toolName = llmToolName(provider, rest);
    // Every body meets the local rules (tool_name, channel, default), so
    // `default: deny` means deny; the gateway is asked about JSON objects only.
    const evaluation = chain.evaluate(
      {
        toolName,
        channel: 'llm',
        body,
        contentType: req.headers['content-type'],
        contentTypeCount: countHeader(req.rawHeaders, 'content-type'),
      },
      {
        signal: hop.signal,
        // The share holds twice the body: the body, and room for a rewrite as large.
        maxAddedBytes: Math.max(body.length, SMALL_BODY_BYTES),
        reserve: (bytes) => share.take(bytes),
      },
    );
    // The chain holds what it still needs; a suspended handler would keep the
    // original alive beside the gateway's rewrite (a third body at peak).
    body = undefined;
    const result = evaluation instanceof Promise ? await evaluation : evaluation;
    if (result.kind === 'aborted') return hop.abandoned();
    if (result.kind === 'refused') {
      if (result.code === 'body_budget_exhausted') metrics.budgetRefusals.inc({ route: 'llm' });
      return replySidecarError(x, new SidecarError(result.code, result.detail), style);
    }
    record.decision = result.outcome;
    record.policyId = result.kind === 'unavailable' ? undefined : result.policyId || undefined;
    record.source = result.source;
    record.reason = result.reason || undefined;
    if (result.kind === 'deny') return replyError(x, denialBody(result.policyId, result.reason), style);
    if (result.kind === 'unavailable') return replySidecarError(x, new SidecarError(result.code, result.reason), style);
    const forwardLength = partsLength(result.body);
    // A small body goes in one write; a large rewrite as its parts (views of the original and the new strings), never joined.
    const forwardBody = forwardLength <= SMALL_BODY_BYTES ? joinParts(result.body) : result.body;

    const headers = forwardRequestHeaders(req.rawHeaders, req.headers.connection);
    const hadBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (hadBody) headers.push('content-length', String(forwardLength));

    // Opened as the request leaves: operation durations start here.
    const tap = config.usageMetrics
      ? openUsageTap({ provider, method: req.method, path: rest, bodyModel: result.model, metrics: genAi, record })
      : undefined;
    // Read once per request, so one answer meets one version of the rules.
    const localRules = deps.responseRules?.();
    const evaluator = result.kind === 'forward' ? deps.responseRemote?.() : undefined;
    const governed = (localRules !== undefined && localRules.ruleCount > 0) || evaluator !== undefined;
    const responseRules = localRules ?? NO_RESPONSE_RULES;
    const response = await hop.send(dispatcher.request({
      origin: upstream.origin,
      path: upstream.basePath + rest + target.search,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hadBody ? undiciBody(forwardBody) : undefined,
      // A governed stream the gate ended early is cancelled (hop.cancel) after the client's answer is over.
      signal: hop.signal,
    }));
    if (response instanceof Reply) return response;
    const relayed = governed
      ? await relayGoverned(x, hop, response, {
        provider, style, rules: responseRules, metrics, share, tap,
        remote: evaluator && logger
          ? createResponseRemote({
            evaluator, failMode: config.failMode, metrics, logger,
            toolName, toolInput: result.body, reserve: (bytes) => share.take(bytes),
          })
          : undefined,
        abortUpstream: () => hop.cancel(new Error('the response gate ended the stream')),
      })
      : await hop.relay(response, undefined, tap);
    // The request's log line carries the usage: wait until the tap has recorded it.
    const recorded = tap?.settled();
    if (recorded) await recorded;
    return relayed;
  }
}
