import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSafePath, parseTarget } from '../../src/http/path.ts';

test('dot segments are refused in every encoding', () => {
  const bad = [
    '/llm/openai/../x', '/llm/openai/./x', '/llm/openai/%2e%2e/x', '/llm/openai/%2E%2E/x', '/llm/openai/.%2E/x',
    '/llm/openai/%2e./x', '/llm/openai/%252e%252e/x', '/llm/openai/..\\x', '/llm/openai\\..\\x', '/llm/openai/..;/x',
    '/llm/openai/%2e%2e%2fx', '/llm/openai/..%5cx', '/llm/openai/..', '/llm/openai/%2e', '/llm/openai/%25252e%25252e/x',
  ];
  for (const path of bad) assert.throws(() => assertSafePath(path), { code: 'path_traversal' }, path);
});

test('dots inside names pass', () => {
  for (const path of ['/llm/openai/v1/chat.completions', '/llm/x/...', '/llm/x/a..b', '/llm/x/.well-known', '/llm/openai/v1/models/gpt-4.1', '/llm/x/a%20b', '/llm/x/a%3Ab', '/llm/x/%F0%9F%98%80']) {
    assert.doesNotThrow(() => assertSafePath(path), path);
  }
});

test('only origin-form targets are accepted', () => {
  assert.deepEqual(parseTarget('/llm/a/b?x=1&y'), { path: '/llm/a/b', search: '?x=1&y' });
  assert.throws(() => parseTarget('http://evil.example/llm/a'), { code: 'bad_request_target' });
  assert.throws(() => parseTarget('*'), { code: 'bad_request_target' });
  assert.throws(() => parseTarget(''), { code: 'bad_request_target' });
});

test('percent-encoded control characters are refused', () => {
  for (const path of ['/llm/openai/..%00/x', '/llm/openai/v1/%00', '/llm/openai/v1/a%0d%0aX-Injected:%201', '/llm/openai/%2500x', '/llm/openai/%7f']) {
    assert.throws(() => assertSafePath(path), { code: 'bad_request_target' }, path);
  }
});

test('paths a server could read differently are refused', () => {
  for (const path of ['/llm/openai/v1/%69mages/generations', '/llm/openai/v1/images%2Fgenerations', '/llm/openai/v1/a%5cb', '/%6dcp/foo',
    '/llm/openai/v1//images', '/llm/openai/v1/images;x/generations', '/llm/openai/v1\\images', '/llm/openai/%2561x']) {
    assert.throws(() => assertSafePath(path), { code: 'bad_request_target' }, path);
  }
});
