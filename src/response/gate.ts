import type { ErrorBody } from '../http/providers.ts';
import { NO_EFFECT, type EventEffect, type StreamDecoder, type UnitKind } from './decoder.ts';
import { createStreamDecoder, responseFamilyOf } from './decoders.ts';
import type { ResponseRules } from '../policy/response-rules.ts';
import { createSseFramer, readSseFields, rebuildSseEvent } from './sse-frame.ts';
import { denyBody, failureBody, streamErrorEvent, type GateFailure } from './stream-error.ts';
import type { PartVerdict, ResponseView, TextPart, ToolCall } from '../policy/response-types.ts';

/** Bytes held back at once (held events plus an incomplete event), by default. */
export const DEFAULT_MAX_HOLD_BYTES = 8 << 20;
/** How long events may be held behind a tool call, by default. */
export const DEFAULT_MAX_HOLD_MS = 60_000;

/**
 * Asked about each complete tool call the local rules did not deny (the
 * call as they left it: with their redactions when they modified it). Its
 * answer decides; an allow keeps a local modification. It implements the
 * fail mode itself: resolving allow is failing open, a rejection denies
 * (`policy_unavailable`). `signal` fires when the response is abandoned.
 */
export type RemoteCallHook = (call: ToolCall, context: { readonly local: PartVerdict; readonly view: () => ResponseView; readonly signal: AbortSignal }) => Promise<PartVerdict>;

/** Reported once per held unit (a tool call, or a governed text part), when its held events leave the gate (or are dropped). */
export interface HeldReport {
  readonly key: string;
  readonly kind: UnitKind;
  /** The tool's name ('' for text). */
  readonly name: string;
  /** From the call's first event to its release (or to the end of the stream, when dropped). */
  readonly ms: number;
  /** The call's own event bytes. */
  readonly bytes: number;
  /** What was decided; `deny` also when the gate ended the stream for a failure. */
  readonly action: 'allow' | 'deny' | 'modify';
  readonly policyId: string;
  /** Who decided: the local rules, or the remote hook. */
  readonly source: 'local' | 'remote';
}

/** How the response ended, reported once. */
export interface GateSummary {
  /** `deny` and `error` end the stream with the provider's error event. */
  readonly outcome: 'allow' | 'modify' | 'deny' | 'error' | 'aborted';
  readonly policyId: string;
  readonly reason: string;
  /** For `error`: why (src/response/stream-error.ts). */
  readonly code: GateFailure | undefined;
  readonly toolCalls: number;
  readonly modified: number;
  /** Who decided the outcome: the remote hook when its answer denied or changed something, else the local rules. */
  readonly source: 'local' | 'remote';
}

export interface ResponseGateOptions {
  /** The route's provider name (`openai`, `anthropic`, `google`, ...): its family reads the stream. */
  readonly provider: string;
  readonly rules: ResponseRules;
  readonly remote?: RemoteCallHook | undefined;
  readonly maxHoldBytes?: number | undefined;
  readonly maxHoldMs?: number | undefined;
  /** A call the stream ends inside of: `deny` (the default) ends the stream with an error; `evaluate` judges what arrived, flagged `complete: false`. */
  readonly incomplete?: 'deny' | 'evaluate' | undefined;
  readonly now?: (() => number) | undefined;
  readonly onHeld?: ((report: HeldReport) => void) | undefined;
  /**
   * Asked, with the increase, whenever what the gate holds (held events and
   * an incomplete one) grows past its peak so far: false ends the stream
   * with `body_budget_exhausted` (the request's memory share; see
   * src/memory/budget.ts).
   */
  readonly reserve?: ((bytes: number) => boolean) | undefined;
  readonly onEnd?: ((summary: GateSummary) => void) | undefined;
}

/** Where the gate's output goes: the bytes for the client, in order, then the end. */
export interface GateSink {
  write(chunk: Buffer): void;
  end(): void;
}

export interface ResponseGate {
  /** Upstream bytes, split anywhere. */
  write(chunk: Buffer): void;
  /** The upstream stream ended. */
  end(): void;
  /** The response is abandoned (client gone, upstream broken): nothing more is written, pending evaluations are aborted. */
  destroy(): void;
}

/** One event in the queue: its bytes only (a rewrite parses them again), so what is held is what was received. */
interface Segment {
  readonly raw: Buffer;
  readonly units: readonly string[];
  readonly at: number;
}

interface Unit {
  readonly key: string;
  readonly kind: UnitKind;
  status: 'open' | 'evaluating' | 'decided';
  verdict: PartVerdict | undefined;
  /** A failure that decided it (denies too). */
  failure: GateFailure | undefined;
  readonly since: number;
  bytes: number;
  /** Its events still queued. */
  queued: number;
  reported: boolean;
  name: string;
  source: 'local' | 'remote';
}

const DONE = '[DONE]';

/**
 * The local verdict on a call and on the other readings of it its events
 * gave (decoder.variants: events that disagree on its name or arguments).
 * Any deny denies; else the call's own modify, else another reading's
 * (every held event is rewritten to carry the one result), else its own.
 */
export function judgeLocally(rules: ResponseRules, call: ToolCall, others: readonly ToolCall[]): PartVerdict {
  const own = rules.evaluateCall(call);
  if (own.action === 'deny' || others.length === 0) return own;
  let modify = own.action === 'modify' ? own : undefined;
  for (const other of others) {
    const v = rules.evaluateCall(other);
    if (v.action === 'deny') return v;
    if (v.action === 'modify') modify ??= v;
  }
  return modify ?? own;
}

/** judgeLocally for a governed text part and its other readings. */
export function judgeText(rules: ResponseRules, parts: readonly TextPart[]): PartVerdict {
  let modify: PartVerdict | undefined;
  let own: PartVerdict | undefined;
  for (const part of parts) {
    const v = rules.evaluateText(part);
    if (v.action === 'deny') return v;
    own ??= v;
    if (v.action === 'modify') modify ??= v;
  }
  return modify ?? own!;
}

/**
 * Governs one SSE response as it passes. Events are cut from the bytes
 * (src/response/sse-frame.ts) and read by the provider family's decoder:
 *
 * - an event that belongs to no tool call in flight is written as soon as it
 *   is complete, byte for byte (contiguous events as one view of the input);
 * - a tool call's events are held from its first until it is complete, and
 *   every event after them waits behind them, so the order the SDKs rebuild
 *   the message from is kept;
 * - a complete call is judged by the local rules, then by `remote` when given;
 *   allow releases its events unchanged, modify re-emits them carrying the new
 *   arguments (src/response/<family>.ts rewrite), deny drops everything held
 *   and ends the stream with the family's error event (stream-error.ts):
 *   the agent never sees the denied call's name or arguments;
 * - held bytes past `maxHoldBytes`, a hold past `maxHoldMs`, an event whose
 *   data is not JSON, and (by default) a call the stream ends inside of end
 *   the stream with an error event too: nothing is released ungoverned.
 *
 * When the rules govern text (a `target: text` rule), each text part is held
 * and judged the same way, by the text rules, until it is complete (an
 * Anthropic text block, a Responses output_text part, a Chat choice's or a
 * Gemini candidate's whole text): text then no longer streams live. The
 * remote hook is asked about tool calls only.
 *
 * Otherwise (no remote hook) events that cannot start a call (none of the family's markers,
 * no `\u` escape) are not parsed while no call is open. Output goes to
 * `sink`, synchronously with `write` for what is not held.
 */
export function createResponseGate(options: ResponseGateOptions, sink: GateSink): ResponseGate {
  const family = responseFamilyOf(options.provider);
  const rules = options.rules;
  // With text rules, text parts are held and judged as tool calls are (nothing is parsed lazily then).
  const governText = rules.governsText;
  const decoder: StreamDecoder = createStreamDecoder(family, { governText });
  const framer = createSseFramer();
  const remote = options.remote;
  const maxHoldBytes = options.maxHoldBytes ?? DEFAULT_MAX_HOLD_BYTES;
  const maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  const now = options.now ?? (() => performance.now());
  const markers = [...decoder.markers, '\\u'].map((m) => Buffer.from(m, 'latin1'));
  const abort = new AbortController();

  const units = new Map<string, Unit>();
  let openUnits = 0;
  let queue: Segment[] = [];
  let head = 0;
  let heldBytes = 0;
  let out: Buffer[] = [];
  let firstEvent = true;
  let upstreamEnded = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let modified = 0;
  let firstModify: PartVerdict | undefined;
  let modifySource: 'local' | 'remote' = 'local';
  /** The most the gate has held at once: what it has taken with `reserve`. */
  let reserved = 0;

  const callCount = (): number => {
    let n = 0;
    for (const u of units.values()) if (u.kind === 'tool_call') n++;
    return n;
  };

  const view = (): ResponseView => ({ family, text: decoder.text(), toolCalls: decoder.calls() });

  /** Queues output; a view that continues the last one in the same buffer extends it. */
  function emit(bytes: Buffer): void {
    const last = out[out.length - 1];
    if (last && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else if (bytes.length > 0) {
      out.push(bytes);
    }
  }

  /** Hands the queued output to the sink (once closed, only finish does, with the last of it). */
  function flush(): void {
    if (closed || out.length === 0) return;
    const pending = out;
    out = [];
    for (const b of pending) sink.write(b);
  }

  function finish(summary: GateSummary): void {
    flush();
    closed = true;
    clearTimer();
    queue = [];
    head = 0;
    heldBytes = 0;
    sink.end();
    options.onEnd?.(summary);
  }

  function report(u: Unit, action: HeldReport['action'], policyId: string): void {
    if (u.reported) return;
    u.reported = true;
    options.onHeld?.({ key: u.key, kind: u.kind, name: u.name, ms: now() - u.since, bytes: u.bytes, action, policyId, source: u.source });
  }

  /** Ends the stream with an error event: a denial, or a failure. */
  function terminate(body: ErrorBody, summary: Omit<GateSummary, 'toolCalls' | 'modified' | 'source'> & { source?: 'local' | 'remote' }): void {
    if (closed) return;
    for (const u of units.values()) if (!u.reported && (u.queued > 0 || u.status !== 'decided')) report(u, 'deny', summary.policyId);
    abort.abort();
    out = out.concat(streamErrorEvent(family, body));
    finish({ ...summary, source: summary.source ?? 'local', toolCalls: callCount(), modified });
  }

  function fail(code: GateFailure, source: 'local' | 'remote' = 'local'): void {
    terminate(failureBody(code), { outcome: 'error', policyId: '', reason: failureBody(code).message, code, source });
  }

  function unitOf(key: string): Unit {
    let u = units.get(key);
    if (!u) {
      u = { key, kind: decoder.kindOf(key), status: 'open', verdict: undefined, failure: undefined, since: now(), bytes: 0, queued: 0, reported: false, name: '', source: 'local' };
      units.set(key, u);
      openUnits++;
    }
    return u;
  }

  function decide(u: Unit, verdict: PartVerdict, source: 'local' | 'remote' = 'local'): void {
    if (closed || u.status === 'decided') return;
    u.status = 'decided';
    u.verdict = verdict;
    u.source = source;
    if (verdict.action === 'modify') {
      decoder.modify(u.key, { value: verdict.value, text: verdict.text });
      modified++;
      if (!firstModify) modifySource = source;
      firstModify ??= verdict;
    }
  }

  /** The call judged: local rules, then the remote hook (asynchronously) unless they denied. */
  function evaluate(key: string, complete: boolean): void {
    const u = unitOf(key);
    if (u.status !== 'open') return;
    u.status = 'evaluating';
    openUnits--;
    if (u.kind === 'text') {
      decide(u, judgeText(rules, decoder.textVariants(key, complete)));
      return;
    }
    const [call, ...others] = decoder.variants(key, complete);
    u.name = call!.name;
    const local = judgeLocally(rules, call!, others);
    if (local.action === 'deny' || !remote) {
      decide(u, local);
      return;
    }
    const asked: ToolCall = local.action === 'modify' ? { ...call!, arguments: local.value, argumentsText: local.text } : call!;
    remote(asked, { local, view, signal: abort.signal }).then(
      (answer) => {
        const kept = answer === local || (answer.action === 'allow' && local.action === 'modify');
        decide(u, kept ? local : answer, kept ? 'local' : 'remote');
        pump();
        flush();
      },
      (err: unknown) => {
        if (closed) return;
        u.failure = (err as { code?: unknown } | undefined)?.code === 'body_budget_exhausted' ? 'body_budget_exhausted' : 'policy_unavailable';
        decide(u, { action: 'deny', policyId: '', reason: failureBody(u.failure).message }, 'remote');
        pump();
        flush();
      },
    );
  }

  function release(seg: Segment): boolean {
    let rewrite = false;
    for (const key of seg.units) {
      const u = units.get(key)!;
      if (u.status !== 'decided') return false;
      const v = u.verdict!;
      if (v.action === 'deny') {
        if (u.failure) fail(u.failure, u.source);
        else terminate(denyBody(v.policyId, v.reason), { outcome: 'deny', policyId: v.policyId, reason: v.reason, code: undefined, source: u.source });
        return false;
      }
      if (v.action === 'modify') rewrite = true;
    }
    if (rewrite) {
      let data: string;
      try {
        // `true`: a stream's first event may start with a byte-order mark.
        const doc: unknown = JSON.parse(readSseFields(seg.raw, true).data ?? '');
        decoder.rewrite(doc, seg.units);
        data = JSON.stringify(doc);
      } catch {
        fail('response_unmodifiable');
        return false;
      }
      emit(rebuildSseEvent(seg.raw, data));
    } else {
      emit(seg.raw);
    }
    heldBytes -= seg.raw.length;
    for (const key of seg.units) {
      const u = units.get(key)!;
      if (--u.queued === 0) report(u, u.verdict!.action, u.verdict!.policyId);
    }
    return true;
  }

  /** Queues for output what is releasable from the head of the queue, and finishes when the upstream is over and all is out. */
  function pump(): void {
    if (closed) return;
    while (head < queue.length) {
      if (!release(queue[head]!)) break;
      head++;
    }
    if (closed) return;
    if (head === queue.length) {
      queue = [];
      head = 0;
      clearTimer();
    } else {
      armTimer();
    }
    if (upstreamEnded && queue.length === 0) {
      const outcome = modified > 0 ? 'modify' : 'allow';
      finish({ outcome, policyId: firstModify?.policyId ?? '', reason: firstModify?.reason ?? '', code: undefined, toolCalls: callCount(), modified, source: modifySource });
    }
  }

  function clearTimer(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
  }

  function armTimer(): void {
    if (timer || closed) return;
    const wait = Math.max(0, queue[head]!.at + maxHoldMs - now());
    timer = setTimeout(() => {
      timer = undefined;
      if (closed || head >= queue.length) return;
      if (now() - queue[head]!.at >= maxHoldMs) {
        fail('response_hold_timeout');
        return;
      }
      armTimer();
    }, wait);
    timer.unref();
  }

  function worthParsing(raw: Buffer): boolean {
    // With a remote hook every event is read, so the message it is shown holds the text too.
    if (openUnits > 0 || governText || remote) return true;
    for (const m of markers) if (raw.indexOf(m) !== -1) return true;
    return false;
  }

  function onEvent(raw: Buffer): void {
    if (closed) return;
    let effect: EventEffect = NO_EFFECT;
    if (worthParsing(raw)) {
      const { data } = readSseFields(raw, firstEvent);
      if (data !== undefined && data !== '') {
        if (data === DONE) {
          effect = decoder.done();
        } else {
          let doc: unknown;
          try {
            doc = JSON.parse(data);
          } catch {
            fail('response_unreadable');
            return;
          }
          effect = decoder.read(doc);
          if (effect.late) {
            fail('response_out_of_order');
            return;
          }
        }
      }
    }
    firstEvent = false;
    const at = now();
    for (const key of effect.units) {
      const u = unitOf(key);
      u.bytes += raw.length;
      u.queued++;
    }
    queue.push({ raw, units: effect.units, at });
    heldBytes += raw.length;
    for (const key of effect.completes) evaluate(key, true);
    pump();
    if (!closed && heldBytes > maxHoldBytes) fail('response_hold_exceeded');
  }

  return {
    write(chunk) {
      if (closed) return;
      framer.push(chunk, onEvent);
      const holding = heldBytes + framer.pendingBytes;
      if (!closed && holding > maxHoldBytes) fail('response_hold_exceeded');
      if (!closed && holding > reserved && options.reserve) {
        if (options.reserve(holding - reserved)) reserved = holding;
        else fail('body_budget_exhausted');
      }
      flush();
    },
    end() {
      if (closed || upstreamEnded) return;
      framer.end(onEvent);
      if (closed) return;
      upstreamEnded = true;
      for (const u of [...units.values()]) {
        if (u.status !== 'open') continue;
        // Text the stream ended in is judged as it is: it carries no call to act on.
        if (u.kind === 'text' || options.incomplete === 'evaluate') {
          evaluate(u.key, false);
        } else {
          u.status = 'decided';
          openUnits--;
          u.failure = 'response_tool_call_incomplete';
          u.verdict = { action: 'deny', policyId: '', reason: failureBody('response_tool_call_incomplete').message };
        }
      }
      pump();
    },
    destroy() {
      if (closed) return;
      closed = true;
      abort.abort();
      clearTimer();
      queue = [];
      out = [];
      options.onEnd?.({ outcome: 'aborted', policyId: '', reason: '', code: undefined, toolCalls: callCount(), modified, source: 'local' });
    },
  };
}
