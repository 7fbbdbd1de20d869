/** Builders for AdmissionReview payloads and checks on the returned patch. */
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1';
import type { IPod } from 'kubernetes-models/v1';
import type { AdmissionReviewResponse } from '../../../src/injector/admission.ts';
import type { InjectorConfig } from '../../../src/injector/config.ts';
import { loadInjectorConfig } from '../../../src/injector/config.ts';

export interface Review {
  apiVersion: string;
  kind: string;
  request: {
    uid: string;
    kind: { group: string; version: string; kind: string };
    namespace: string;
    operation: string;
    object: IPod;
    [key: string]: unknown;
  };
}

const FIXTURE = new URL('../fixtures/deployment-pod-review.json', import.meta.url);

/** The API server's review of a Deployment-created pod (generateName, no name). */
export function deploymentPodReview(): Review {
  return JSON.parse(readFileSync(FIXTURE, 'utf8')) as Review;
}

/** A minimal bare pod (named, no env, no volumes, no labels, no init containers). */
export function barePodReview(annotations: Record<string, string>, namespace = 'team-b'): Review {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'c0ffee00-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'solo-agent', namespace, annotations },
        spec: { containers: [{ name: 'agent', image: 'registry.example.com/solo-agent:2.0.0' }] },
      },
      oldObject: null,
      dryRun: false,
    },
  };
}

export const TEST_IMAGE = 'ghcr.io/firstops-dev/firstops-sidecar:0.1.0';

export function testConfig(env: Record<string, string> = {}): InjectorConfig {
  return loadInjectorConfig({
    FIRSTOPS_INJECTOR_TLS_CERT: '/unused/tls.crt',
    FIRSTOPS_INJECTOR_TLS_KEY: '/unused/tls.key',
    FIRSTOPS_INJECTOR_SIDECAR_IMAGE: TEST_IMAGE,
    FIRSTOPS_INJECTOR_SIDECAR_ENV: JSON.stringify({
      FIRSTOPS_GATEWAY_URL: 'https://api.firstops.dev',
      FIRSTOPS_FAIL_MODE: 'closed',
      FIRSTOPS_UPSTREAM_OPENAI: 'https://api.openai.com',
    }),
    ...env,
  });
}

/** Decodes the base64 JSONPatch of a response. */
export function decodePatch(body: AdmissionReviewResponse): Operation[] {
  const { patch, patchType } = body.response;
  assert.equal(patchType, 'JSONPatch');
  assert.ok(patch !== undefined, 'response has no patch');
  const decoded: unknown = JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
  assert.ok(Array.isArray(decoded), 'patch is not a JSON array');
  return decoded as Operation[];
}

/**
 * Applies the patch as the API server would (validating every operation
 * against the document, without touching the input), then validates the
 * result against the Kubernetes Pod schema.
 */
export function applyAndValidate(pod: IPod, ops: Operation[]): IPod {
  const { newDocument } = jsonpatch.applyPatch(structuredClone(pod), ops, true, false);
  new Pod(newDocument).validate();
  return newDocument;
}
