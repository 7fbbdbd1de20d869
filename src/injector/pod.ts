/**
 * A narrow, validated view of the incoming Pod: only the fields the mutation
 * reads. The AdmissionReview body is untrusted JSON, so nothing is cast; a pod
 * that does not have the expected shape is reported as a problem.
 */

export interface ContainerView {
  name: string;
  /** Whether the container has an `env` array (decides add-array vs append). */
  hasEnv: boolean;
  envNames: ReadonlySet<string>;
}

export interface PodView {
  name: string | undefined;
  generateName: string | undefined;
  /** undefined when metadata.annotations is absent (the patch must create it). */
  annotations: Readonly<Record<string, string>> | undefined;
  labels: Readonly<Record<string, string>> | undefined;
  containers: readonly ContainerView[];
  /** undefined when spec.initContainers is absent. */
  initContainers: readonly ContainerView[] | undefined;
  /** undefined when spec.volumes is absent. */
  volumeNames: ReadonlySet<string> | undefined;
  /** spec.hostNetwork: the sidecar's ports would be bound on the node. */
  hostNetwork: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined | string {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) return `${where} must be an object`;
  const result: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') return `${where}[${JSON.stringify(key)}] must be a string`;
    result[key] = entry;
  }
  return result;
}

function readContainers(value: unknown, where: string): ContainerView[] | undefined | string {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) return `${where} must be an array`;
  const result: ContainerView[] = [];
  for (const [index, container] of value.entries()) {
    if (!isRecord(container) || typeof container.name !== 'string') return `${where}[${index}] must have a name`;
    const env = container.env;
    if (env !== undefined && env !== null && !Array.isArray(env)) return `${where}[${index}].env must be an array`;
    const envNames = new Set<string>();
    for (const entry of Array.isArray(env) ? env : []) {
      if (isRecord(entry) && typeof entry.name === 'string') envNames.add(entry.name);
    }
    result.push({ name: container.name, hasEnv: Array.isArray(env), envNames });
  }
  return result;
}

/** Builds the view, or returns a description of why the object is not a usable Pod. */
export function readPod(object: unknown): PodView | string {
  if (!isRecord(object)) return 'request.object must be a Pod object';
  const metadata = object.metadata ?? {};
  const spec = object.spec;
  if (!isRecord(metadata)) return 'request.object.metadata must be an object';
  if (!isRecord(spec)) return 'request.object.spec must be an object';

  const annotations = stringMap(metadata.annotations, 'metadata.annotations');
  if (typeof annotations === 'string') return annotations;
  const labels = stringMap(metadata.labels, 'metadata.labels');
  if (typeof labels === 'string') return labels;
  const containers = readContainers(spec.containers, 'spec.containers');
  if (typeof containers === 'string') return containers;
  if (containers === undefined || containers.length === 0) return 'spec.containers must list at least one container';
  const initContainers = readContainers(spec.initContainers, 'spec.initContainers');
  if (typeof initContainers === 'string') return initContainers;

  let volumeNames: Set<string> | undefined;
  if (spec.volumes !== undefined && spec.volumes !== null) {
    if (!Array.isArray(spec.volumes)) return 'spec.volumes must be an array';
    volumeNames = new Set();
    for (const volume of spec.volumes) {
      if (isRecord(volume) && typeof volume.name === 'string') volumeNames.add(volume.name);
    }
  }

  return {
    name: typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : undefined,
    generateName: typeof metadata.generateName === 'string' && metadata.generateName !== '' ? metadata.generateName : undefined,
    annotations,
    labels,
    containers,
    initContainers,
    volumeNames,
    hostNetwork: spec.hostNetwork === true,
  };
}

/** Human identifier for logs: name, or generateName followed by '*'. */
export function podDisplayName(pod: PodView): string {
  return pod.name ?? (pod.generateName !== undefined ? `${pod.generateName}*` : '<unnamed>');
}
