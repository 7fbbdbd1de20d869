import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SidecarError } from '../../src/errors.ts';
import { denialBody, errorEnvelope, errorStyleFor, sidecarErrorBody } from '../../src/http/providers.ts';

test('providers map to their error style; anything else speaks OpenAI', () => {
  assert.equal(errorStyleFor('anthropic'), 'anthropic');
  assert.equal(errorStyleFor('google'), 'gemini');
  assert.equal(errorStyleFor('gemini'), 'gemini');
  assert.equal(errorStyleFor('openai'), 'openai');
  assert.equal(errorStyleFor('azure_openai'), 'openai');
  assert.equal(errorStyleFor(undefined), 'openai');
});

test('envelopes for a denial', () => {
  const deny = denialBody('p1', 'no');
  assert.deepEqual(errorEnvelope('openai', deny), { error: { message: 'blocked by FirstOps policy: no', type: 'firstops_policy_violation', code: 'policy_denied', param: null, policy_id: 'p1' } });
  assert.deepEqual(errorEnvelope('anthropic', deny), { type: 'error', error: { type: 'firstops_policy_violation', message: 'blocked by FirstOps policy: no' } });
  assert.deepEqual(errorEnvelope('gemini', deny), { error: { code: 403, message: 'blocked by FirstOps policy: no', status: 'PERMISSION_DENIED' } });
});

test('sidecar errors keep their code and status in every envelope', () => {
  const body = sidecarErrorBody(new SidecarError('upstream_timeout'));
  assert.equal(body.status, 504);
  assert.deepEqual(errorEnvelope('gemini', body), { error: { code: 504, message: 'upstream did not answer in time', status: 'DEADLINE_EXCEEDED' } });
  assert.equal((errorEnvelope('openai', body) as { error: { code: string } }).error.code, 'upstream_timeout');
});
