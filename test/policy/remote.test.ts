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
    [{ decision: 'modify', modified_payload: Buffer.from('not json').toString('base64') }, /not a JSON document/],
    [{ decision: 'modify', modified_payload: Buffer.from('[1]').toString('base64') }, /not a JSON object/],
  ];
  for (const [answer, why] of cases) {
    assert.throws(() => parseHookAnswer(answer), (e: Error) => e instanceof RemoteEvaluationError && why.test(e.message), JSON.stringify(answer));
  }
});
