// Hostile input on the proxy port, over raw TCP so nothing normalises the
// bytes. Hand-written cases for each attack class, then seeded random
// combinations (FUZZ_CASES, FUZZ_SEED). For every request:
//  - the sidecar answers with a documented status and code (src/errors.ts),
//  - at most one request reaches the upstream, on the path the client named,
//  - whatever reaches the upstream is exactly what the policy saw: its JSON
//    equals the tool_input the gateway evaluated, it has no duplicate keys and
//    no BOM, and nothing that parses as a JSON object was forwarded ungoverned,
//  - a locally denied marker never reaches the upstream,
// and afterwards the sidecar still serves a normal request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ERROR_TABLE } from '../../src/errors.ts';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import type { RecordedRequest } from '../helpers/server.ts';
import { chatBody, rawExchange, tempDir, writePolicy, type RawResponse } from '../faults/lib.ts';
import { hasDuplicateKeys } from './json.ts';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { compilePattern } from '../../src/policy/regex.ts';

const MAX_BODY = 8192;
const PREFIX = '/llm/openai';
const CASES = Number(process.env.FUZZ_CASES ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

const DOCUMENTED_STATUS = new Set<number>([200, 403, ...Object.values(ERROR_TABLE).map((e) => e.status)]);
const DOCUMENTED_CODES = new Set<string>([...Object.keys(ERROR_TABLE), 'policy_denied']);

const POLICY = {
  version: 1,
  default: 'allow',
  rules: [
    { id: 'deny-marker', match: { input: { model: 'deny-me' } }, decision: 'deny', reason: 'marker model' },
    { id: 'redact', match: { channel: 'llm' }, decision: 'modify', redact: [{ pattern: 'SECRET-[0-9]+', replacement: '[x]' }] },
  ],
};

/**
 * The shipped example policy, as users run it, with the fuzz suite's two
 * markers added: a deny rule first, and SECRET-n among its redactions.
 */
const EXAMPLE = parseYaml(readFileSync(new URL('../../examples/policy.yaml', import.meta.url), 'utf8')) as { rules: Array<{ id: string; redact?: unknown[] }> };
const EXAMPLE_PLUS_MARKERS = {
  ...EXAMPLE,
  rules: [POLICY.rules[0]!, ...EXAMPLE.rules.map((r) => (r.redact ? { ...r, redact: [...r.redact, POLICY.rules[1]!.redact![0]] } : r))],
};
const POLICIES: ReadonlyArray<[string, unknown]> = [['fuzz policy', POLICY], ['shipped example policy', EXAMPLE_PLUS_MARKERS]];
/** The example policy's e-mail pattern, on RE2 as the sidecar runs it (a backtracking check would be slow here). */
const EMAIL = compilePattern('[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', '');

export interface FuzzCase {
  readonly name: string;
  readonly bytes: Buffer | string | ReadonlyArray<Buffer | string>;
  /** Statuses this case may get (default: any documented one). */
  readonly expect?: readonly number[];
  /** The bytes carry two requests on purpose (legitimate pipelining). */
  readonly pipelined?: true;
  /** No answer with the connection left open is acceptable (the headers never completed). */
  readonly mayStaySilent?: true;
}

function req(method: string, target: string, headers: ReadonlyArray<string>, body: Buffer | string = ''): Buffer {
  return Buffer.concat([Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'latin1'), Buffer.from(body as string)]);
}
const cl = (body: Buffer | string): string => `Content-Length: ${typeof body === 'string' ? Buffer.byteLength(body) : body.length}`;
const JSON_CT = 'Content-Type: application/json';
const json = (body: string, ct = JSON_CT): Buffer => req('POST', `${PREFIX}/v1/chat/completions`, [ct, cl(body)], body);
const json2 = (body: Buffer): Buffer => req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(body)], body);
const chunked = (body: Buffer | string, size = 7): string => {
  const b = Buffer.from(body as string);
  let out = '';
  for (let i = 0; i < b.length; i += size) {
    const part = b.subarray(i, i + size);
    out += `${part.length.toString(16)}\r\n${part.toString('latin1')}\r\n`;
  }
  return `${out}0\r\n\r\n`;
};
const smuggled = `GET ${PREFIX}/SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n`;

const TRAVERSALS = [
  '/../../admin', '/..', '/.', '/%2e%2e/x', '/%2E%2E/x', '/%2e/x', '/%252e%252e/x', '/%25252e%25252e/x', '/..%2fx', '/..%5cx',
  '/..\\x', '/\\..\\x', '/.;/x', '/..;/x', '/..;param/x', '/v1/..', '/v1/%2e%2e', '/v1/%2e%2e%2f%2e%2e/admin', '/%20../x', '/..%09/x',
];

function handwritten(): FuzzCase[] {
  const cases: FuzzCase[] = [];
  const ok = chatBody('hello');
  // Methods
  for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'FOO', 'get', 'CONNECT', 'PRI', 'M-SEARCH', 'P\x00ST', 'PO ST', '']) {
    cases.push({ name: `method ${JSON.stringify(m)}`, bytes: req(m, `${PREFIX}/v1/chat/completions`, [JSON_CT, cl(ok)], ok) });
  }
  // Targets
  for (const t of ['*', `http://evil.example${PREFIX}/v1/x`, `HTTP://127.0.0.1${PREFIX}/v1/x`, `//evil.example${PREFIX}/v1/x`, 'evil.example:443', `${PREFIX}/v1/x#frag`, `${PREFIX}/v1/x?q=../../admin`, '/mcp/../llm/openai/v1', `${PREFIX}`, '/llm/', '/llm//v1', '/llm/%6fpenai/v1/x', '/LLM/openai/v1', `${PREFIX}//v1//x`, `${PREFIX}/v1/x y`, `${PREFIX}/v1/\x7f`, `${PREFIX}/v1/é`]) {
    cases.push({ name: `target ${JSON.stringify(t)}`, bytes: req('POST', t, [JSON_CT, cl(ok)], ok) });
  }
  for (const t of TRAVERSALS) {
    cases.push({ name: `traversal ${JSON.stringify(t)}`, bytes: req('POST', PREFIX + t, [JSON_CT, cl(ok)], ok), expect: [400] });
    cases.push({ name: `traversal in /mcp ${JSON.stringify(t)}`, bytes: req('GET', `/mcp${t}`, []), expect: [400] });
  }
  // Framing and smuggling
  cases.push({ name: 'invalid Content-Length abc', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Content-Length: abc'], ok), expect: [400] });
  cases.push({ name: 'negative Content-Length', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Content-Length: -1'], ok), expect: [400] });
  cases.push({ name: 'Content-Length with plus', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, `Content-Length: +${ok.length}`], ok), expect: [400] });
  cases.push({ name: 'Content-Length list', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, `Content-Length: ${ok.length}, ${ok.length}`], ok) });
  cases.push({ name: 'duplicate Content-Length, same', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), cl(ok)], ok) });
  cases.push({ name: 'duplicate Content-Length, different', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), `Content-Length: ${ok.length - 5}`], ok), expect: [400] });
  cases.push({ name: 'huge Content-Length', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Content-Length: 99999999999999999999999'], ok), expect: [400, 413] });
  cases.push({ name: 'CL.TE smuggling', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Content-Length: 6', 'Transfer-Encoding: chunked'], `0\r\n\r\n${smuggled}`), expect: [400] });
  cases.push({ name: 'TE.CL smuggling', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked', `Content-Length: 4`], `${chunked(ok)}${smuggled}`), expect: [400] });
  cases.push({ name: 'TE obfuscated (xchunked)', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: xchunked', cl(ok)], ok), expect: [400, 501] });
  cases.push({ name: 'TE chunked, identity', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked, identity'], chunked(ok)), expect: [400, 501] });
  cases.push({ name: 'TE with space before colon', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding : chunked', cl(ok)], ok), expect: [400] });
  cases.push({ name: 'TE obs-fold', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding:', ' chunked', cl(ok)], ok), expect: [400] });
  cases.push({ name: 'two TE headers', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], chunked(ok)) });
  cases.push({ name: 'bad chunk size', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked'], `zz\r\n${ok}\r\n0\r\n\r\n`), expect: [400] });
  cases.push({ name: 'chunk size overflow', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked'], `ffffffffffffffffff\r\n${ok}\r\n0\r\n\r\n`), expect: [400, 413] });
  cases.push({ name: 'chunk extension', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked'], `${ok.length.toString(16)};ext=1\r\n${ok}\r\n0\r\n\r\n`) });
  cases.push({ name: 'chunk with bare LF', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked'], `${ok.length.toString(16)}\n${ok}\n0\n\n`), expect: [400] });
  cases.push({ name: 'pipelined second request after a complete one', bytes: [json(ok), smuggled], pipelined: true });
  cases.push({ name: 'NUL after a dot segment (refused: a parser cutting at NUL would read ..)', bytes: req('POST', `${PREFIX}/..%00/x`, [JSON_CT, cl(ok)], ok), expect: [400] });
  // Header injection and hygiene
  cases.push({ name: 'bare CR in a header value', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'X-A: b\rX-Injected: 1'], ok), expect: [400] });
  cases.push({ name: 'bare LF in a header value', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'X-A: b\nX-Injected: 1'], ok) });
  cases.push({ name: 'NUL in a header value', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'X-A: b\0c'], ok), expect: [400] });
  cases.push({ name: 'header name with space', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'X A: b'], ok), expect: [400] });
  cases.push({ name: 'header without colon', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'garbage'], ok), expect: [400] });
  cases.push({ name: 'huge header', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), `X-Big: ${'a'.repeat(20_000)}`], ok), expect: [431] });
  cases.push({ name: 'many headers', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), ...Array.from({ length: 3000 }, (_, i) => `X-${i}: ${i}`)], ok), expect: [431] });
  cases.push({ name: 'Expect: 100-continue', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'Expect: 100-continue'], ok) });
  cases.push({ name: 'Content-Encoding gzip (cannot be governed)', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'Content-Encoding: gzip'], ok), expect: [415] });
  cases.push({ name: 'Content-Encoding identity, gzip', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'Content-Encoding: identity, gzip'], ok), expect: [415] });
  cases.push({ name: 'two Content-Encoding headers', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, cl(ok), 'Content-Encoding: identity', 'Content-Encoding: gzip'], ok), expect: [415] });
  cases.push({ name: 'HTTP/1.0 request', bytes: `POST ${PREFIX}/v1/x HTTP/1.0\r\n${JSON_CT}\r\n${cl(ok)}\r\n\r\n${ok}` });
  cases.push({ name: 'HTTP/2.0 version in a 1.1 request line', bytes: `GET ${PREFIX}/v1/x HTTP/2.0\r\n\r\n` });
  cases.push({ name: 'HTTP/9.9', bytes: `GET ${PREFIX}/v1/x HTTP/9.9\r\n\r\n`, expect: [400, 505] });
  cases.push({ name: 'HTTP/2 preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' });
  cases.push({ name: 'TLS client hello', bytes: Buffer.from('16030100a5010000a10303', 'hex'), expect: [400] });
  cases.push({ name: 'empty line flood', bytes: '\r\n'.repeat(5000), mayStaySilent: true });
  // Bodies around the cap (FIRSTOPS_MAX_BODY_BYTES = MAX_BODY)
  const padded = (size: number): string => {
    const base = chatBody('');
    return chatBody('p'.repeat(size - base.length));
  };
  for (const size of [MAX_BODY - 1, MAX_BODY]) {
    cases.push({ name: `body of ${size} bytes (Content-Length)`, bytes: json(padded(size)), expect: [200] });
    cases.push({ name: `body of ${size} bytes (chunked)`, bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked'], chunked(padded(size), 1000)), expect: [200] });
  }
  cases.push({ name: `body of ${MAX_BODY + 1} bytes (Content-Length)`, bytes: json(padded(MAX_BODY + 1)), expect: [413] });
  cases.push({ name: `body of ${MAX_BODY + 1} bytes (chunked)`, bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, 'Transfer-Encoding: chunked'], chunked(padded(MAX_BODY + 1), 1000)), expect: [413] });
  cases.push({ name: 'body far over the cap, declared', bytes: req('POST', `${PREFIX}/v1/x`, [JSON_CT, `Content-Length: ${MAX_BODY * 100}`], 'x'.repeat(100)), expect: [413] });
  // JSON shapes
  const deep = (n: number): string => `{"model":"m","x":${'['.repeat(n)}${']'.repeat(n)}}`;
  const deepObj = (n: number): string => `{"model":"m","x":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;
  cases.push({ name: 'nested arrays at the depth limit', bytes: json(deep(511)), expect: [200] });
  cases.push({ name: 'nested arrays past the depth limit', bytes: json(deep(512)), expect: [400] });
  cases.push({ name: 'deeply nested arrays', bytes: json(deep(Math.floor((MAX_BODY - 40) / 2))), expect: [400] });
  cases.push({ name: 'deeply nested objects', bytes: json(deepObj(Math.floor((MAX_BODY - 40) / 6))), expect: [400] });
  cases.push({ name: 'many keys', bytes: json(`{${Array.from({ length: 900 }, (_, i) => `"k${i}":${i}`).join(',')}}`) });
  cases.push({ name: 'invalid JSON', bytes: json('{"model":'), expect: [400] });
  cases.push({ name: 'JSON with trailing garbage', bytes: json(`${ok}xyz`), expect: [400] });
  cases.push({ name: 'two JSON documents', bytes: json(`${ok}${ok}`), expect: [400] });
  cases.push({ name: 'JSON with a BOM', bytes: json(`\ufeff${ok}`), expect: [400] });
  cases.push({ name: 'JSON with a BOM, not declared as JSON', bytes: json(`\ufeff${ok}`, 'Content-Type: text/plain') });
  cases.push({ name: 'JSON array body', bytes: json('[{"model":"deny-me"}]') });
  cases.push({ name: 'JSON string body', bytes: json('"SECRET-1"') });
  cases.push({ name: 'non-UTF-8 bytes, declared JSON', bytes: json2(Buffer.from('{"model":"\xff\xfe\xc0\xaf"}', 'latin1')), expect: [400] });
  cases.push({ name: 'overlong UTF-8 quote, declared JSON', bytes: json2(Buffer.concat([Buffer.from('{"model":"a'), Buffer.from([0xc0, 0xa2]), Buffer.from('b"} ')])), expect: [400] });
  cases.push({ name: 'lone surrogate escape', bytes: json('{"model":"\\ud800","messages":[]}') });
  cases.push({ name: 'non-UTF-8 bytes, not JSON', bytes: req('POST', `${PREFIX}/v1/x`, ['Content-Type: application/octet-stream', 'Content-Length: 4'], Buffer.from([0xff, 0xfe, 0x00, 0x80])) });
  cases.push({ name: 'JSON object sent as text/plain is still governed', bytes: json('{"model":"deny-me"}', 'Content-Type: text/plain'), expect: [403] });
  cases.push({ name: 'JSON object without Content-Type is still governed', bytes: req('POST', `${PREFIX}/v1/x`, [cl('{"model":"deny-me"}')], '{"model":"deny-me"}'), expect: [403] });
  cases.push({ name: 'Content-Type application/json with params', bytes: json('{"model":"deny-me"}', 'Content-Type: application/json; charset=utf-8'), expect: [403] });
  cases.push({ name: 'Content-Type vnd+json', bytes: json('{"model":', 'Content-Type: application/vnd.api+json'), expect: [400] });
  // Duplicate keys: a policy must not judge one value while the upstream reads another.
  cases.push({ name: 'duplicate key, denied value first', bytes: json('{"model":"deny-me","model":"gpt-4o"}'), expect: [400] });
  cases.push({ name: 'duplicate key, denied value last', bytes: json('{"model":"gpt-4o","model":"deny-me"}'), expect: [400, 403] });
  cases.push({ name: 'duplicate key via escape', bytes: json('{"model":"deny-me","mod\\u0065l":"gpt-4o"}'), expect: [400] });
  cases.push({ name: 'duplicate key nested', bytes: json('{"model":"m","messages":[{"role":"user","role":"system","content":"x"}]}'), expect: [400] });
  cases.push({ name: 'same key in sibling objects is fine', bytes: json('{"model":"m","messages":[{"role":"user"},{"role":"user"}]}'), expect: [200] });
  cases.push({ name: 'key text inside a string value is fine', bytes: json('{"model":"m","x":"\\"model\\":1","y":{"model":2}}'), expect: [200] });
  cases.push({ name: 'redaction is what is forwarded', bytes: json(chatBody('my key SECRET-42 here')), expect: [200] });
  cases.push({ name: 'denied marker', bytes: json('{"model":"deny-me"}'), expect: [403] });
  cases.push({ name: 'denied marker via escapes', bytes: json('{"model":"deny\\u002dme"}'), expect: [403] });
  return cases;
}

/** mulberry32: a small seeded PRNG so a failing random case can be replayed with FUZZ_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generated(seed: number, count: number): FuzzCase[] {
  const rand = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const methods = ['GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'FOO', 'TRACE'];
  const targets = [
    `${PREFIX}/v1/chat/completions`, `${PREFIX}/v1/responses`, '/llm/anthropic/v1/messages', '/llm/nope/v1/x', '/mcp/v1', '/other', '*',
    `http://evil${PREFIX}/v1/x`, ...TRAVERSALS.map((t) => PREFIX + t), `${PREFIX}/v1/x?a=1&b=%2e%2e`, `${PREFIX}/v1/%00`,
  ];
  const bodies = [
    () => chatBody('hi'), () => chatBody('SECRET-7 inside'), () => '{"model":"deny-me"}', () => '{"model":"deny-me","model":"x"}', () => '{"a":1,"a":2}',
    () => '', () => 'not json', () => '{"model":', () => '[1,2,3]', () => 'null', () => '\ufeff{"a":1}', () => '{"a":"\\u0000"}',
    () => `{"x":${'['.repeat(500)}${']'.repeat(500)}}`, () => chatBody('y'.repeat(Math.floor(rand() * MAX_BODY * 1.2))),
    // Long single tokens and what the example policy's patterns look for.
    () => chatBody('a1'.repeat(Math.floor(rand() * MAX_BODY / 2.2))), () => chatBody(`${'x.'.repeat(Math.floor(rand() * 3000))}@${'y'.repeat(500)}`),
    () => chatBody('mail SECRET-1 to bob@example.com, key sk-ABCDEFGHIJKLMNOPQRSTUVWX'), () => chatBody(`AKIA${'A'.repeat(Math.floor(rand() * 4000))}`),
  ];
  const randomBytes = (): Buffer => Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256)));
  const contentTypes = [JSON_CT, JSON_CT, 'Content-Type: text/plain', 'Content-Type: application/x-ndjson', 'Content-Type: application/problem+json', ''];
  const extras = [
    '', 'Connection: close', 'Connection: keep-alive, X-Drop', 'X-Drop: 1', 'Authorization: Bearer sk-test-SECRETKEY-0123456789abcdef', 'Content-Encoding: gzip',
    'Content-Encoding: identity', 'Expect: 100-continue', 'Upgrade: websocket', 'Proxy-Authorization: Basic eA==', 'Host: evil.example', 'X-Forwarded-Host: evil',
    `X-Big: ${'b'.repeat(Math.floor(rand() * 20_000))}`, 'X-Bad: a\rb', 'Cookie: a=b',
  ];
  const framings = ['cl', 'cl', 'chunked', 'none', 'cl+te', 'dup-cl', 'bad-cl', 'short-cl'] as const;
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const method = pick(methods);
    const target = pick(targets);
    const body: Buffer = rand() < 0.07 ? randomBytes() : Buffer.from(pick(bodies)());
    const headers = [pick(contentTypes), pick(extras), pick(extras)].filter(Boolean);
    const framing = pick(framings);
    let payload: Buffer | string = body;
    switch (framing) {
      case 'cl': headers.push(cl(body)); break;
      case 'chunked': headers.push('Transfer-Encoding: chunked'); payload = chunked(body, 1 + Math.floor(rand() * 50)); break; // latin1 string
      case 'none': payload = ''; break;
      case 'cl+te': headers.push(cl(body), 'Transfer-Encoding: chunked'); payload = chunked(body); break;
      case 'dup-cl': headers.push(cl(body), `Content-Length: ${body.length + 1}`); break;
      case 'bad-cl': headers.push(`Content-Length: ${pick(['x', '-3', '1.5', '0x10', ' ', '1 2'])}`); break;
      case 'short-cl': headers.push(`Content-Length: ${Math.max(0, body.length - 3)}`); break;
    }
    cases.push({ name: `random #${i} (seed ${seed}): ${method} ${target.slice(0, 60)} ${framing}`, bytes: req(method, target, headers, typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload), mayStaySilent: framing === 'short-cl' ? true : undefined });
  }
  return cases;
}

for (const [label, policy] of POLICIES) describe(`proxy port fuzz (${label})`, () => {
  let identity: TestIdentity;
  let gateway: FakeGateway;
  let upstream: FakeUpstream;
  let sidecar: TestSidecar;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir();
    await writePolicy(join(dir.dir, 'policy.json'), policy);
    identity = await makeIdentityDir();
    gateway = await startGateway();
    gateway.trust(identity.jkt, identity.agentId);
    upstream = await startUpstream();
    sidecar = await startTestSidecar({
      FIRSTOPS_IDENTITY_DIR: identity.dir,
      FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_UPSTREAM_ANTHROPIC: upstream.url,
      FIRSTOPS_POLICY_FILE: join(dir.dir, 'policy.json'),
      FIRSTOPS_MAX_BODY_BYTES: String(MAX_BODY),
      FIRSTOPS_LOG_LEVEL: 'info',
    }, [identity.privateKeyPem.split('\n')[1], `fo_agent_${identity.agentId}`]);
  });

  after(async () => {
    // Every DPoP proof the sidecar sent must be absent from every log line.
    const proofs = gateway.hookRequests.map((r) => String(r.headers.dpop ?? '').split('.')[2]);
    await sidecar.close(proofs);
    await gateway.close();
    await upstream.close();
    await identity.cleanup();
    await dir.cleanup();
    // A proof checked after the sidecar already abandoned the hop (the fuzz
    // client hung up) reads port 0 from the closed socket: not a bad proof.
    assert.deepEqual(gateway.rejected, []);
  });

  /** Checks one exchange against the invariants in the header comment. */
  function check(c: FuzzCase, r: RawResponse, forwarded: readonly RecordedRequest[], evaluated: ReadonlyArray<Record<string, unknown>>): void {
    const what = `${c.name}: got ${r.status} ${r.body.slice(0, 200)}`;
    if (r.status === 0) {
      // No answer at all is only acceptable when the bytes were not HTTP enough to answer.
      assert.ok(r.closed || c.mayStaySilent, `${what}: no response and the connection stayed open`);
    } else {
      assert.ok(DOCUMENTED_STATUS.has(r.status), `${what}: undocumented status`);
      if (r.status >= 400 && r.status !== 404 || r.status === 404 && r.headers['content-type']?.includes('json')) {
        let code: unknown;
        try {
          const parsed = JSON.parse(r.body) as { error?: { code?: unknown; type?: unknown } };
          code = parsed.error?.code;
        } catch {
          code = undefined;
        }
        if (r.status !== 200 && code !== undefined && typeof code === 'string') assert.ok(DOCUMENTED_CODES.has(code), `${what}: undocumented code ${code}`);
      }
    }
    if (c.expect) assert.ok(c.expect.includes(r.status), `${what}: expected one of ${c.expect.join(', ')}`);
    assert.ok(forwarded.length <= (c.pipelined ? 2 : 1), `${what}: ${forwarded.length} requests reached the upstream`);
    for (const f of forwarded) {
      if (c.pipelined && f.url.includes('SMUGGLED')) {
        // The pipelined GET (node serves pipelined requests concurrently): no body, nothing to govern.
        assert.equal(f.body.length, 0, `${what}: the pipelined request carried a body`);
        continue;
      }
      if (!c.pipelined) assert.ok(!f.url.includes('SMUGGLED'), `${what}: a smuggled request reached the upstream`);
      const path = f.url.split('?')[0]!;
      let decoded = path;
      for (let k = 0; k < 4; k++) decoded = decoded.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
      assert.ok(!/(^|[/\\])\s*\.\.?\s*([/\\;]|$)/.test(decoded), `${what}: dot segment forwarded: ${f.url}`);
      const text = f.body.toString('utf8');
      assert.ok(!text.includes('deny-me') || evaluated.length === 0 && !looksLikeObject(f.body), `${what}: a denied marker was forwarded: ${text.slice(0, 100)}`);
      if (evaluated.length === 1) {
        const governed = evaluated[0]!.tool_input;
        assert.equal(f.body[0] === 0xef && f.body[1] === 0xbb, false, `${what}: a BOM was forwarded`);
        assert.equal(hasDuplicateKeys(text), false, `${what}: forwarded JSON has duplicate keys`);
        let same: boolean;
        try {
          assert.deepEqual(JSON.parse(text), governed);
          same = true;
        } catch (err) {
          // Too deep for deepEqual's recursion: compare canonical text instead.
          same = err instanceof RangeError ? JSON.stringify(JSON.parse(text)) === JSON.stringify(governed) : false;
        }
        assert.ok(same, `${what}: the forwarded body is not what the policy evaluated: ${text.slice(0, 80)} vs ${JSON.stringify(governed).slice(0, 80)} (${f.url})`);
        assert.ok(!text.includes('SECRET-'), `${what}: a redaction was not applied to the forwarded body`);
        if (policy !== POLICY) assert.ok(!EMAIL.test(text), `${what}: an address the example policy redacts was forwarded`);
      } else {
        assert.equal(evaluated.length, 0);
        assert.equal(looksLikeObject(f.body), false, `${what}: a JSON object was forwarded without evaluation`);
      }
    }
  }

  function looksLikeObject(body: Buffer): boolean {
    try {
      const v: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body));
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    } catch {
      return false;
    }
  }

  async function run(cases: readonly FuzzCase[]): Promise<void> {
    const port = sidecar.sidecar.proxyAddress.port;
    const failures: string[] = [];
    for (const c of cases) {
      const forwardedBefore = upstream.requests.length;
      const evaluatedBefore = gateway.hookRequests.length;
      const r = await rawExchange(port, c.bytes, { idleMs: c.pipelined ? 200 : 25, timeoutMs: c.mayStaySilent ? 500 : 5_000 });
      const forwarded = upstream.requests.slice(forwardedBefore);
      const evaluated = gateway.hookRequests.slice(evaluatedBefore).map((h) => JSON.parse(h.body.toString('utf8')) as Record<string, unknown>);
      try {
        check(c, r, forwarded, evaluated);
      } catch (err) {
        failures.push((err as Error).message.split('\n')[0]!);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases broke an invariant`);
    // Still serving normally.
    const ok = await rawExchange(port, json(chatBody('after the fuzz')), { idleMs: 100 });
    assert.equal(ok.status, 200);
  }

  test('hand-written attack cases', async () => {
    await run(handwritten());
  });

  test(`${CASES} seeded random requests (FUZZ_SEED=${SEED})`, async () => {
    await run(generated(SEED, CASES));
  });

  test('slowloris: a request is not served before its headers are complete', async () => {
    const socket = connect(sidecar.sidecar.proxyAddress.port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.on('data', (c: Buffer) => { received += c.toString('latin1'); });
    const before = upstream.requests.length;
    const body = chatBody('slow');
    const whole = `POST ${PREFIX}/v1/chat/completions HTTP/1.1\r\nHost: x\r\n${JSON_CT}\r\n${cl(body)}\r\nX-Slow: ${'s'.repeat(50)}\r\n\r\n${body}`;
    const cut = whole.indexOf('\r\n\r\n');
    for (let i = 0; i < cut; i += 16) {
      socket.write(whole.slice(i, Math.min(i + 16, cut)));
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(received, '', 'answered before the headers were complete');
    assert.equal(upstream.requests.length, before, 'forwarded before the headers were complete');
    const answered = new Promise<void>((resolve) => socket.on('data', () => { if (received.includes('\r\n\r\n')) resolve(); }));
    socket.write(whole.slice(cut));
    await answered;
    assert.match(received, /^HTTP\/1\.1 200/);
    assert.equal(upstream.requests.length, before + 1);
    socket.destroy();
  });

  test('slowloris: headers never completed are cut by headersTimeout (FUZZ_SLOWLORIS_FULL=1, up to 60 s)', { skip: process.env.FUZZ_SLOWLORIS_FULL !== '1' }, async () => {
    const r = await rawExchange(sidecar.sidecar.proxyAddress.port, `POST ${PREFIX}/v1/x HTTP/1.1\r\nHost: x\r\nX-A: `, { timeoutMs: 70_000 });
    assert.ok(r.closed);
    assert.ok([0, 408].includes(r.status), `got ${r.status}`);
  });
});

describe('huge and deeply nested JSON (cap 4 MiB)', () => {
  let identity: TestIdentity;
  let gateway: FakeGateway;
  let upstream: FakeUpstream;
  let sidecar: TestSidecar;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const CAP = 4 * 1024 * 1024;

  before(async () => {
    dir = await tempDir();
    await writePolicy(join(dir.dir, 'policy.json'), POLICY);
    identity = await makeIdentityDir();
    gateway = await startGateway();
    gateway.trust(identity.jkt, identity.agentId);
    upstream = await startUpstream();
    sidecar = await startTestSidecar({
      FIRSTOPS_IDENTITY_DIR: identity.dir,
      FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_POLICY_FILE: join(dir.dir, 'policy.json'),
      FIRSTOPS_MAX_BODY_BYTES: String(CAP),
      FIRSTOPS_LOG_LEVEL: 'info',
    });
  });

  after(async () => {
    await sidecar.close();
    await gateway.close();
    await upstream.close();
    await identity.cleanup();
    await dir.cleanup();
  });

  const shapes: Array<[string, () => string]> = [
    ['objects nested 500,000 deep', () => `{"model":"m","x":${'{"a":'.repeat(500_000)}"SECRET-1"${'}'.repeat(500_000)}}`],
    ['arrays nested 1,000,000 deep', () => `{"model":"m","x":${'['.repeat(1_000_000)}"SECRET-1"${']'.repeat(1_000_000)}}`],
    ['3 MiB of one string', () => chatBody('z'.repeat(3 * 1024 * 1024))],
    ['100,000 keys', () => `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":"v"`).join(',')}}`],
  ];
  for (const [name, make] of shapes) {
    test(`${name}: a documented answer, and what is forwarded is what was governed`, async () => {
      const body = make();
      assert.ok(body.length <= CAP);
      const before = upstream.requests.length;
      const evaluatedBefore = gateway.hookRequests.length;
      const r = await rawExchange(sidecar.sidecar.proxyAddress.port, json(body), { idleMs: 25, timeoutMs: 20_000 });
      // Nesting past 512 levels is refused (400 invalid_json), never a 500.
      const want = name.includes('deep') ? [400] : [200];
      assert.ok(want.includes(r.status), `${name}: got ${r.status} ${r.body.slice(0, 300)}`);
      const forwarded = upstream.requests.slice(before);
      if (r.status === 200) {
        assert.equal(forwarded.length, 1);
        const evaluated = gateway.hookRequests.slice(evaluatedBefore);
        assert.equal(evaluated.length, 1);
        const governed = JSON.parse(evaluated[0]!.body.toString('utf8')) as { tool_input: unknown };
        assert.equal(forwarded[0]!.body.toString('utf8'), JSON.stringify(governed.tool_input));
        assert.ok(!forwarded[0]!.body.includes('SECRET-1'));
      } else {
        assert.equal(forwarded.length, 0);
      }
      const ok = await rawExchange(sidecar.sidecar.proxyAddress.port, json(chatBody('after')), { idleMs: 25 });
      assert.equal(ok.status, 200);
    });
  }
});
