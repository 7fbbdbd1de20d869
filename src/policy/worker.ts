// Entry of a policy worker thread (pool.ts): inspects large bodies off the
// main thread. Its only side effect is answering the messages it is sent.
import { parentPort } from 'node:worker_threads';
import { inspect, type InspectInput } from './inspect.ts';
import { RECLAIM_EVERY_BYTES, reclaimSoon } from '../memory/reclaim.ts';
import { compileRules, type LocalPolicy } from './rules.ts';
import type { TaskMessage, ResultMessage } from './pool.ts';

let compiled: { key: string; policy: LocalPolicy } | undefined;

function policyFor(message: TaskMessage): LocalPolicy | undefined {
  if (message.policy === undefined) return undefined;
  if (message.policy.document !== undefined) {
    compiled = { key: message.policy.key, policy: compileRules(message.policy.document, message.policy.origin, message.policy.sha256) };
  }
  if (compiled?.key !== message.policy.key) throw new Error('policy worker was not sent the rules in force');
  return compiled.policy;
}

parentPort!.on('message', (message: TaskMessage) => {
  let reply: ResultMessage;
  try {
    const { body, ...rest } = message.input;
    const input: InspectInput = { ...rest, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
    const inspection = inspect(input, policyFor(message), message.maxAddedBytes);
    reply = { id: message.id, inspection };
    // A rewrite's new bytes go back without a copy when they own their memory (small ones may share a pool: cloned).
    const transfer: ArrayBuffer[] = [];
    if (inspection.kind === 'inspected' && inspection.local?.action === 'modify') {
      for (const { bytes } of inspection.local.edits) {
        if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length && bytes.buffer instanceof ArrayBuffer && !transfer.includes(bytes.buffer)) transfer.push(bytes.buffer);
      }
    }
    parentPort!.postMessage(reply, transfer);
    // A large body's redaction leaves its transients in this thread's heap: free them before the next task.
    if (input.body.length >= RECLAIM_EVERY_BYTES) reclaimSoon();
  } catch (err) {
    reply = { id: message.id, error: (err as Error).message };
    parentPort!.postMessage(reply);
  }
});
