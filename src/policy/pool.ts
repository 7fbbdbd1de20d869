import { Worker } from 'node:worker_threads';
import { inspect, type InspectInput, type Inspection } from './inspect.ts';
import type { LocalPolicy, PolicyDoc } from './rules.ts';

/** What `Inspector.inspect` can answer besides an inspection. */
export type InspectOutcome =
  | Inspection
  /** No answer within the budget (or no room to wait for one): the fail mode decides. */
  | { readonly kind: 'unfinished'; readonly reason: string }
  /** The client went away first. */
  | { readonly kind: 'aborted' };

export interface Inspector {
  /**
   * Bodies up to `offloadBytes` are inspected inline (microseconds to a few
   * milliseconds, bounded by their size); larger ones on a worker thread, so
   * the event loop keeps serving probes, metrics and other requests, within
   * `budgetMs` from the moment they are queued. An inline answer is returned
   * as it is, not as a promise: on the governed hop an async frame and the
   * microtasks to settle it cost more than inspecting a small body.
   */
  inspect(input: InspectInput, policy: LocalPolicy | undefined, options?: { signal?: AbortSignal; maxAddedBytes?: number }): InspectOutcome | Promise<InspectOutcome>;
  /** Fails what is queued and stops the workers. */
  close(): Promise<void>;
}

export interface InspectorOptions {
  /** Worker threads at most; they start on first use and stop after `idleMs` without work. */
  readonly workers: number;
  readonly offloadBytes: number;
  readonly budgetMs: number;
  /** Large bodies waiting for a worker at most; more are answered `unfinished` at once. */
  readonly maxQueue: number;
  readonly idleMs?: number;
}

/**
 * Main thread → worker. The policy text is sent only when the worker does not
 * hold that version yet. The body is a view of shared memory: both threads
 * read the same bytes, none is copied.
 */
export interface TaskMessage {
  readonly id: number;
  readonly policy: { readonly key: string; readonly document?: PolicyDoc; readonly origin: string; readonly sha256: string } | undefined;
  readonly input: Omit<InspectInput, 'body'> & { readonly body: Uint8Array };
  readonly maxAddedBytes: number | undefined;
}
export type ResultMessage = { readonly id: number; readonly inspection: Inspection } | { readonly id: number; readonly error: string };

interface Task {
  readonly id: number;
  readonly input: InspectInput;
  readonly policy: LocalPolicy | undefined;
  readonly maxAddedBytes: number | undefined;
  readonly settle: (outcome: InspectOutcome) => void;
}

interface Slot {
  worker: Worker | undefined;
  task: Task | undefined;
  policyKey: string | undefined;
  idle: NodeJS.Timeout | undefined;
}

const workerUrl = new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

function validate(options: InspectorOptions): void {
  const bad = (name: keyof InspectorOptions, min: number): void => {
    const v = options[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) throw new RangeError(`inspector option ${name} must be an integer >= ${min} (got ${v})`);
  };
  bad('workers', 1);
  bad('offloadBytes', 0);
  bad('budgetMs', 1);
  bad('maxQueue', 0);
  bad('idleMs', 1);
}

/**
 * The body as a view of shared memory. A body read for a worker already is
 * one (body.ts reads large bodies into a SharedArrayBuffer); any other is
 * copied once.
 */
export function sharedView(body: Buffer): Uint8Array {
  if (body.buffer instanceof SharedArrayBuffer) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  const shared = new Uint8Array(new SharedArrayBuffer(body.length));
  shared.set(body);
  return shared;
}

const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** A worker's inspection with its edits' bytes as Buffers again (structured clone delivers Uint8Arrays). */
function revive(inspection: Inspection): Inspection {
  if (inspection.kind !== 'inspected' || inspection.local?.action !== 'modify') return inspection;
  const edits = inspection.local.edits.map((edit) => ({ ...edit, bytes: asBuffer(edit.bytes) }));
  return { ...inspection, local: { ...inspection.local, edits } };
}

export function createInspector(options: InspectorOptions): Inspector {
  validate(options);
  const idleMs = options.idleMs ?? 30_000;
  const slots: Slot[] = Array.from({ length: options.workers }, () => ({ worker: undefined, task: undefined, policyKey: undefined, idle: undefined }));
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;

  const stopWorker = (slot: Slot): void => {
    clearTimeout(slot.idle);
    slot.idle = undefined;
    const worker = slot.worker;
    slot.worker = undefined;
    slot.policyKey = undefined;
    if (worker) {
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      void worker.terminate();
    }
  };

  const finish = (slot: Slot, outcome: InspectOutcome): void => {
    const task = slot.task;
    slot.task = undefined;
    task?.settle(outcome);
    pump();
  };

  const spawn = (slot: Slot): Worker => {
    const worker = new Worker(workerUrl);
    worker.unref();
    worker.on('message', (message: ResultMessage) => {
      if (slot.task?.id !== message.id) return;
      finish(slot, 'error' in message ? { kind: 'unfinished', reason: `local policy evaluation failed: ${message.error}` } : revive(message.inspection));
    });
    const lost = (why: string): void => {
      stopWorker(slot);
      if (slot.task) finish(slot, { kind: 'unfinished', reason: why });
    };
    worker.on('error', (err: Error & { code?: string }) =>
      lost(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'the policy worker ran out of memory' : `the policy worker failed: ${err.message}`));
    worker.on('exit', (code) => lost(`the policy worker exited (${code})`));
    return worker;
  };

  const start = (slot: Slot, task: Task): void => {
    clearTimeout(slot.idle);
    slot.idle = undefined;
    slot.task = task;
    const worker = (slot.worker ??= spawn(slot));
    const key = task.policy ? `${task.policy.sha256}:${task.policy.origin}` : undefined;
    const policy = task.policy && key
      ? { key, origin: task.policy.origin, sha256: task.policy.sha256, ...(slot.policyKey === key ? {} : { document: task.policy.document }) }
      : undefined;
    slot.policyKey = key ?? slot.policyKey;
    const { body, ...rest } = task.input;
    const message: TaskMessage = { id: task.id, policy, input: { ...rest, body: sharedView(body) }, maxAddedBytes: task.maxAddedBytes };
    worker.postMessage(message);
  };

  function pump(): void {
    for (const slot of slots) {
      if (slot.task) continue;
      const task = queue.shift();
      if (task) {
        start(slot, task);
      } else if (slot.worker && !slot.idle) {
        slot.idle = setTimeout(() => stopWorker(slot), idleMs);
        slot.idle.unref();
      }
    }
  }

  /** A large body: queued for a worker thread, within the budget from now. */
  const offload = async (input: InspectInput, policy: LocalPolicy | undefined, signal: AbortSignal | undefined, maxAddedBytes: number | undefined): Promise<InspectOutcome> => {
    if (closed) return { kind: 'unfinished', reason: 'the sidecar is shutting down' };
    if (signal?.aborted) return { kind: 'aborted' };
    const busy = slots.every((s) => s.task !== undefined);
    if (busy && queue.length >= options.maxQueue) {
      return { kind: 'unfinished', reason: `${queue.length} large bodies are already waiting for a policy worker` };
    }
    return new Promise<InspectOutcome>((resolve) => {
      let settled = false;
      const task: Task = {
        id: nextId++,
        input,
        policy,
        maxAddedBytes,
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      const drop = (outcome: InspectOutcome): void => {
        const queued = queue.indexOf(task);
        if (queued !== -1) {
          queue.splice(queued, 1);
          task.settle(outcome);
          return;
        }
        const slot = slots.find((s) => s.task === task);
        if (!slot) return;
        // A running evaluation cannot be interrupted in place: the worker goes, a fresh one takes the next task.
        stopWorker(slot);
        finish(slot, outcome);
      };
      const deadline = setTimeout(
        () => drop({ kind: 'unfinished', reason: `local policy evaluation exceeded its budget of ${options.budgetMs} ms (FIRSTOPS_POLICY_BUDGET_MS)` }),
        options.budgetMs,
      );
      const onAbort = (): void => drop({ kind: 'aborted' });
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(task);
      pump();
    });
  };

  return {
    inspect(input, policy, { signal, maxAddedBytes } = {}) {
      if (input.body.length <= options.offloadBytes) return inspect(input, policy, maxAddedBytes);
      return offload(input, policy, signal, maxAddedBytes);
    },

    async close() {
      closed = true;
      for (const task of queue.splice(0)) task.settle({ kind: 'unfinished', reason: 'the sidecar is shutting down' });
      await Promise.all(slots.map(async (slot) => {
        const worker = slot.worker;
        if (slot.task) finish(slot, { kind: 'unfinished', reason: 'the sidecar is shutting down' });
        stopWorker(slot);
        if (worker) await new Promise((r) => setImmediate(r));
      }));
    },
  };
}
