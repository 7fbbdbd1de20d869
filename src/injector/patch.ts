/**
 * JSONPatch (RFC 6902) construction. The patch is applied by the API server
 * to the pod exactly as received, so every path must exist or be created:
 * arrays and maps that are absent are added whole, present ones are appended
 * to (`/-`) or extended member by member, and map keys are escaped (RFC 6901:
 * `~` → `~0`, `/` → `~1`, so `firstops.dev/status` → `firstops.dev~1status`).
 */
import type { PodView } from './pod.ts';
import type { EnvVar, SidecarPlan } from './sidecar.ts';
import { baseUrlEnv } from './sidecar-env.ts';

export interface AddOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export function escapePointerSegment(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Sets map entries under /metadata/<field>, creating the map when absent. */
export function setMapEntries(
  field: 'annotations' | 'labels',
  current: Readonly<Record<string, string>> | undefined,
  entries: Readonly<Record<string, string>>,
): AddOperation[] {
  if (current === undefined) return [{ op: 'add', path: `/metadata/${field}`, value: { ...entries } }];
  // `add` on an existing member replaces its value (RFC 6902 §4.1).
  return Object.entries(entries).map(([key, value]) => ({
    op: 'add',
    path: `/metadata/${field}/${escapePointerSegment(key)}`,
    value,
  }));
}

/** Appends items to an array at `path`, creating it when absent. */
export function appendToArray(path: string, present: boolean, items: readonly unknown[]): AddOperation[] {
  if (items.length === 0) return [];
  if (!present) return [{ op: 'add', path, value: [...items] }];
  return items.map((value) => ({ op: 'add', path: `${path}/-`, value }));
}

/** Env entries a container lacks, leaving any value it already sets alone. */
function missingEnv(containerEnv: ReadonlySet<string>, wanted: readonly EnvVar[]): EnvVar[] {
  return wanted.filter((entry) => !containerEnv.has(entry.name));
}

export function buildInjectionPatch(
  pod: PodView,
  plan: SidecarPlan,
  annotations: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): AddOperation[] {
  // metadata itself always exists here: the pod opted in through an annotation.
  const ops: AddOperation[] = [
    ...setMapEntries('annotations', pod.annotations, annotations),
    ...setMapEntries('labels', pod.labels, labels),
    ...appendToArray('/spec/volumes', pod.volumeNames !== undefined, plan.volumes),
  ];

  if (plan.baseUrlEnv) {
    const wanted = baseUrlEnv(plan.proxyPort);
    pod.containers.forEach((container, index) => {
      ops.push(...appendToArray(`/spec/containers/${index}/env`, container.hasEnv, missingEnv(container.envNames, wanted)));
    });
  }

  // Appended last, after the env operations, so container indices above stay valid.
  if (plan.native) {
    ops.push(...appendToArray('/spec/initContainers', pod.initContainers !== undefined, [plan.container]));
  } else {
    ops.push(...appendToArray('/spec/containers', true, [plan.container]));
  }
  return ops;
}
