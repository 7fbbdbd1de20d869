import type { UsageFamily } from './types.ts';

/**
 * Anthropic Messages: `usage` on the body; in a stream, `message_start`
 * carries the input count (under `message`) and each `message_delta` the
 * cumulative output count. Input tokens include cache writes and reads,
 * which Anthropic reports apart but bills as input.
 */
export const ANTHROPIC_USAGE: UsageFamily = {
  style: 'anthropic',
  operations: [{ path: /\/messages$/, operation: 'chat' }],
  requestModel: { body: true },
  sources: [
    { at: ['message'], usage: 'usage', input: ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'], output: ['output_tokens'], model: 'model' },
    { at: [], usage: 'usage', input: ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'], output: ['output_tokens'], model: 'model' },
  ],
};
