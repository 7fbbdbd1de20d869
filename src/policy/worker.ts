// Entry of a policy worker thread (pool.ts): inspects large bodies off the
// main thread. Its only side effect is answering the messages it is sent.
import { parentPort } from 'node:worker_threads';
import { inspect, type InspectInput } from './inspect.ts';
import { compilePolicy, type LocalPolicy } from './local.ts';
import type { TaskMessage, ResultMessage } from './pool.ts';

let compiled: { key: string; policy: LocalPolicy } | undefined;

function policyFor(message: TaskMessage): LocalPolicy | undefined {
  if (message.policy === undefined) return undefined;
  if (message.policy.text !== undefined) {
    compiled = { key: message.policy.key, policy: compilePolicy(message.policy.text, message.policy.origin) };
  }
  if (compiled?.key !== message.policy.key) throw new Error('policy worker was not sent the rules in force');
  return compiled.policy;
}

parentPort!.on('message', (message: TaskMessage) => {
  let reply: ResultMessage;
  try {
    const { body, ...rest } = message.input;
    const input: InspectInput = { ...rest, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
    const inspection = inspect(input, policyFor(message));
    const rewritten = inspection.kind === 'inspected' && inspection.local?.action === 'modify' ? inspection.local.body : undefined;
    reply = { id: message.id, inspection };
    // The rewritten body goes back without a copy.
    const transfer = rewritten && rewritten.byteOffset === 0 && rewritten.buffer.byteLength === rewritten.length ? [rewritten.buffer as ArrayBuffer] : [];
    parentPort!.postMessage(reply, transfer);
  } catch (err) {
    reply = { id: message.id, error: (err as Error).message };
    parentPort!.postMessage(reply);
  }
});
