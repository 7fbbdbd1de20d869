import { createStreamDecoder, responseFamilyOf } from './decoders.ts';
import { createSseFramer, readSseFields } from './sse-frame.ts';
import type { ResponseView } from '../policy/response-types.ts';

export { viewOfJsonBody } from './json.ts';

/**
 * Builds the view of an SSE response from its bytes, split anywhere: for the
 * debug listener's dry run and for tests. Events whose data is not JSON are
 * skipped. Bounded by what it is fed: argument text is kept whole.
 */
export function createStreamViewer(provider: string) {
  const family = responseFamilyOf(provider);
  const decoder = createStreamDecoder(family);
  const framer = createSseFramer();
  let first = true;
  function onEvent(raw: Buffer): void {
    const { data } = readSseFields(raw, first);
    first = false;
    if (data === undefined || data === '') return;
    if (data === '[DONE]') {
      decoder.done();
      return;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(data);
    } catch {
      return;
    }
    decoder.read(doc);
  }
  function push(chunk: Buffer): void {
    framer.push(chunk, onEvent);
  }
  function end(): ResponseView {
    framer.end(onEvent);
    return { family, text: decoder.text(), toolCalls: decoder.calls() };
  }
  return { push, end };
}
