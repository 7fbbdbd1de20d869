import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteEvaluationError, parseHookAnswer } from '../../src/policy/remote.ts';

test('answers the sidecar can act on', () => {
  assert.deepEqual(parseHookAnswer({ decision: 'allow' }), { action: 'allow', policyId: '', reason: '' });
  assert.deepEqual(parseHookAnswer({}), { action: 'allow', policyId: '', reason: '' }, 'an empty decision is the wire default, allow');
  assert.deepEqual(parseHookAnswer({ decision: 'deny', reason: 'r', policy_id: 'p' }), { action: 'deny', policyId: 'p', reason: 'r' });
  assert.deepEqual(parseHookAnswer({ decision: 'ask', reason: 'r', policy_id: 'p' }), { action: 'ask', policyId: 'p', reason: 'r' });
  const payload = Buffer.from('{"model":"m","messages":[]}').toString('base64');
  const modify = parseHookAnswer({ decision: 'modify', modified_payload: payload, policy_id: 'p' });
  assert.equal(modify.action, 'modify');
  if (modify.action === 'modify') assert.equal(modify.body.toString(), '{"model":"m","messages":[]}');
});

test('a falsy decision is the SDK\'s clean allow (data.get("decision") or "allow")', () => {
  for (const decision of [null, '', false, 0, [], {}]) {
    assert.deepEqual(parseHookAnswer({ decision, reason: 'r', policy_id: 'p' }), { action: 'allow', policyId: 'p', reason: 'r' }, JSON.stringify(decision));
  }
});

test('a modify payload is forwarded as the gateway wrote it, whatever it holds', () => {
  const binary = Buffer.from(Array.from({ length: 2 * 1024 * 1024 }, (_, i) => (i * 7919) % 256));
  for (const bytes of [Buffer.from('not json'), Buffer.from('[1]'), Buffer.from('"a string"'), Buffer.from([0xff, 0xfe, 0x00]), binary]) {
    const verdict = parseHookAnswer({ decision: 'modify', modified_payload: bytes.toString('base64'), policy_id: 'p', reason: 'r' });
    assert.equal(verdict.action, 'modify');
    if (verdict.action === 'modify') assert.ok(Buffer.concat(verdict.body).equals(bytes), `payload of ${bytes.length} bytes decoded byte-exact`);
  }
});

test('malformed answers are errors, never allows', () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /not a JSON object/],
    [null, /not a JSON object/],
    [{ decision: 'maybe' }, /unknown decision/],
    [{ decision: 42 }, /unknown decision/],
    [{ decision: 'modify' }, /modify without modified_payload/],
    [{ decision: 'modify', modified_payload: '' }, /modify without modified_payload/],
    [{ decision: 'modify', modified_payload: 'not base64!!' }, /not standard base64/],
    [{ decision: 'modify', modified_payload: 'eyJh' + '-_' }, /not standard base64/],
    [{ decision: 'modify', modified_payload: 'eyJh=' }, /not standard base64/],
    [{ decision: 'modify', modified_payload: 'ey==Jh==' }, /not standard base64/],
    [{ decision: 'modify', modified_payload: 42 }, /modify without modified_payload/],
    [{ decision: 'modify', modified_payload: null }, /modify without modified_payload/],
    [{ decision: ' allow' }, /unknown decision/],
    [{ decision: true }, /unknown decision/],
  ];
  for (const [answer, why] of cases) {
    assert.throws(() => parseHookAnswer(answer), (e: Error) => e instanceof RemoteEvaluationError && why.test(e.message), JSON.stringify(answer));
  }
});
