/**
 * AdmissionReview (admission.k8s.io/v1) handling: parse the request, decide
 * whether to inject, skip or reject, and build the response. Pure: no I/O, so
 * it is tested directly on real payloads.
 */
import {
  ANNOTATIONS, INJECTED_LABEL, INJECTED_LABEL_VALUE, INJECTOR_POD_LABEL, STATUS_INJECTED,
  STATUS_SKIPPED_MISSING_SECRET, parseAnnotations, wantsInjection,
} from './annotations.ts';
import type { InjectorConfig } from './config.ts';
import type { InjectorErrorCode } from './errors.ts';
import { InjectorError } from './errors.ts';
import type { AddOperation } from './patch.ts';
import { buildInjectionPatch, setMapEntries } from './patch.ts';
import type { PodView } from './pod.ts';
import { podDisplayName, readPod } from './pod.ts';
import { CA_VOLUME_NAME, IDENTITY_VOLUME_NAME, POLICY_VOLUME_NAME, SIDECAR_CONTAINER_NAME, buildSidecar } from './sidecar.ts';
import { DEFAULT_ADMIN_PORT, DEFAULT_PROXY_PORT, SIDECAR_ENV, portFromEnv } from './sidecar-env.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: string;
  namespace: string;
  subResource: string | undefined;
  object: unknown;
}

export interface AdmissionStatus {
  status: 'Failure';
  code: number;
  reason: 'Forbidden';
  message: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON-encoded patch. */
  patch?: string;
  status?: AdmissionStatus;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type SkipReason =
  | 'not-a-pod' | 'not-create' | 'excluded-namespace' | 'injector-pod' | 'not-requested' | 'already-injected'
  | 'invalid-pod';

export type Decision =
  | { outcome: 'injected'; patch: AddOperation[]; warnings: string[] }
  /** warnings: only for 'invalid-pod' (the API server's validation reports the real problem). */
  | { outcome: 'skipped'; reason: SkipReason; warnings?: string[] }
  | { outcome: 'warned'; reason: InjectorErrorCode; message: string; patch: AddOperation[] }
  | { outcome: 'rejected'; reason: InjectorErrorCode; message: string };

export interface AdmissionResult {
  body: AdmissionReviewResponse;
  decision: Decision;
  namespace: string;
  /** Pod name, or generateName followed by '*'. */
  pod: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): InjectorError {
  return new InjectorError('ADMISSION_REVIEW_INVALID', message);
}

/** Validates the envelope; throws ADMISSION_REVIEW_INVALID on anything unexpected. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw invalid('body must be a JSON object');
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== 'AdmissionReview') {
    throw invalid(`expected apiVersion ${ADMISSION_API_VERSION} kind AdmissionReview, got ${String(body.apiVersion)} ${String(body.kind)}`);
  }
  const request = body.request;
  if (!isRecord(request)) throw invalid('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '') throw invalid('request.uid is missing');
  const kind = request.kind;
  if (!isRecord(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string') {
    throw invalid('request.kind is missing');
  }
  if (typeof request.operation !== 'string') throw invalid('request.operation is missing');
  const objectNamespace = isRecord(request.object) && isRecord(request.object.metadata)
    ? request.object.metadata.namespace
    : undefined;
  const namespace = typeof request.namespace === 'string' && request.namespace !== ''
    ? request.namespace
    : typeof objectNamespace === 'string' ? objectNamespace : '';
  return {
    uid: request.uid,
    kind: { group: typeof kind.group === 'string' ? kind.group : '', version: kind.version, kind: kind.kind },
    operation: request.operation,
    namespace,
    subResource: typeof request.subResource === 'string' && request.subResource !== '' ? request.subResource : undefined,
    object: request.object,
  };
}

function alreadyInjected(pod: PodView): boolean {
  if (pod.annotations?.[ANNOTATIONS.status] === STATUS_INJECTED) return true;
  const named = (c: { name: string }) => c.name === SIDECAR_CONTAINER_NAME;
  return pod.containers.some(named) || (pod.initContainers ?? []).some(named);
}

function missingSecretMessage(namespace: string): string {
  return `pod asks for the FirstOps sidecar (${ANNOTATIONS.inject}: "true") but names no identity Secret: `
    + `add the annotation ${ANNOTATIONS.agentSecret}: <name of a Secret in namespace ${namespace || 'of the pod'} `
    + `with keys agent-id and private-key.pem> to the pod template, or remove ${ANNOTATIONS.inject}`;
}

/** metadata.<field> of the raw object, as far as it is a string map entry; never throws. */
function rawMetadataEntry(object: unknown, field: 'labels' | 'annotations', key: string): unknown {
  if (!isRecord(object) || !isRecord(object.metadata)) return undefined;
  const map = object.metadata[field];
  return isRecord(map) ? map[key] : undefined;
}

function rawDisplayName(object: unknown): string {
  if (!isRecord(object) || !isRecord(object.metadata)) return '';
  const { name, generateName } = object.metadata;
  if (typeof name === 'string' && name !== '') return name;
  return typeof generateName === 'string' && generateName !== '' ? `${generateName}*` : '';
}

/**
 * Decides what to do with one pod; never throws for pod content problems.
 * Exclusion and opt-in are checked on the raw object first, so a pod the
 * injector does not concern is never refused for its shape.
 */
export function decide(request: AdmissionRequest, config: InjectorConfig): { decision: Decision; pod: string } {
  const skip = (reason: SkipReason, pod = '') => ({ decision: { outcome: 'skipped' as const, reason }, pod });
  if (request.kind.kind !== 'Pod' || request.kind.group !== '' || request.subResource !== undefined) return skip('not-a-pod');
  if (request.operation !== 'CREATE') return skip('not-create');

  const rawName = rawDisplayName(request.object);
  if (config.excludedNamespaces.has(request.namespace)) return skip('excluded-namespace', rawName);
  if (rawMetadataEntry(request.object, 'labels', INJECTOR_POD_LABEL) !== undefined) return skip('injector-pod', rawName);
  const optIn = rawMetadataEntry(request.object, 'annotations', ANNOTATIONS.inject);
  if (!wantsInjection(typeof optIn === 'string' ? { [ANNOTATIONS.inject]: optIn } : undefined)) return skip('not-requested', rawName);

  const pod = readPod(request.object);
  if (typeof pod === 'string') {
    // Admit unchanged with a warning: the API server's own validation then
    // reports the real problem to the user (an HTTP error here would surface
    // as an opaque "failed calling webhook", or be ignored).
    return {
      decision: {
        outcome: 'skipped',
        reason: 'invalid-pod',
        warnings: [`FirstOps sidecar not injected: the pod could not be read (${pod})`],
      },
      pod: rawName,
    };
  }
  const name = podDisplayName(pod);
  if (alreadyInjected(pod)) return skip('already-injected', name);

  const reject = (reason: InjectorErrorCode, problems: readonly string[]) => ({
    decision: { outcome: 'rejected' as const, reason, message: problems.join('; ') },
    pod: name,
  });
  if (pod.hostNetwork) {
    const proxyPort = portFromEnv(config.sidecar.env, SIDECAR_ENV.port, DEFAULT_PROXY_PORT);
    const adminPort = portFromEnv(config.sidecar.env, SIDECAR_ENV.adminPort, DEFAULT_ADMIN_PORT);
    return reject('POD_HOST_NETWORK', [
      `the pod uses hostNetwork: true, so the sidecar's ports ${proxyPort} (proxy) and ${adminPort} (admin, bound on all `
        + `interfaces) would be opened on the node itself, clash between pods on the same node, and expose the admin port `
        + `outside the pod: remove ${ANNOTATIONS.inject} from this pod, or run it without hostNetwork`,
    ]);
  }
  const parsed = parseAnnotations(pod.annotations ?? {});
  if (parsed.problems.length > 0) return reject('POD_ANNOTATION_INVALID', parsed.problems);
  const warnings = parsed.unknown.map((key) => `unknown annotation ${key} ignored by the FirstOps injector`);

  const secret = parsed.overrides.agentSecret;
  if (secret === undefined) {
    const message = missingSecretMessage(request.namespace);
    if (config.missingSecretAction === 'reject') return reject('POD_AGENT_SECRET_MISSING', [message]);
    return {
      decision: {
        outcome: 'warned',
        reason: 'POD_AGENT_SECRET_MISSING',
        message,
        patch: setMapEntries('annotations', pod.annotations, { [ANNOTATIONS.status]: STATUS_SKIPPED_MISSING_SECRET }),
      },
      pod: name,
    };
  }

  const plan = buildSidecar(config.sidecar, parsed.overrides, secret);
  if ('problems' in plan) return reject('POD_ANNOTATION_INVALID', plan.problems);

  const taken = plan.volumes.map((v) => v.name).filter((v) => pod.volumeNames?.has(v) === true);
  if (taken.length > 0) {
    return reject('POD_NAME_CONFLICT', [
      `the pod already has volume(s) ${taken.join(', ')}; the injector needs these names `
        + `(${IDENTITY_VOLUME_NAME}, ${POLICY_VOLUME_NAME}, ${CA_VOLUME_NAME}): rename them in the pod spec`,
    ]);
  }

  const patch = buildInjectionPatch(
    pod,
    plan,
    { [ANNOTATIONS.status]: STATUS_INJECTED },
    { [INJECTED_LABEL]: INJECTED_LABEL_VALUE },
  );
  return { decision: { outcome: 'injected', patch, warnings }, pod: name };
}

function encodePatch(patch: readonly AddOperation[]): string {
  return Buffer.from(JSON.stringify(patch), 'utf8').toString('base64');
}

export function toResponse(uid: string, decision: Decision): AdmissionReviewResponse {
  let response: AdmissionResponse;
  switch (decision.outcome) {
    case 'skipped':
      response = { uid, allowed: true };
      if (decision.warnings !== undefined && decision.warnings.length > 0) response.warnings = decision.warnings;
      break;
    case 'injected':
      response = { uid, allowed: true, patchType: 'JSONPatch', patch: encodePatch(decision.patch) };
      if (decision.warnings.length > 0) response.warnings = decision.warnings;
      break;
    case 'warned':
      response = {
        uid,
        allowed: true,
        patchType: 'JSONPatch',
        patch: encodePatch(decision.patch),
        warnings: [`FirstOps sidecar not injected [${decision.reason}]: add annotation ${ANNOTATIONS.agentSecret}`],
      };
      break;
    case 'rejected':
      response = {
        uid,
        allowed: false,
        status: { status: 'Failure', code: 403, reason: 'Forbidden', message: `firstops-sidecar [${decision.reason}]: ${decision.message}` },
      };
      break;
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** Full pipeline for one review body. Throws InjectorError(ADMISSION_REVIEW_INVALID) only for a broken envelope. */
export function review(body: unknown, config: InjectorConfig): AdmissionResult {
  const request = parseAdmissionReview(body);
  const { decision, pod } = decide(request, config);
  return { body: toResponse(request.uid, decision), decision, namespace: request.namespace, pod };
}
