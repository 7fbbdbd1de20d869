import type { UsageFamily } from './types.ts';

/**
 * OpenAI and the many APIs that copy it: chat completions (`usage` on the
 * body, or on the last chunk of a stream sent with
 * `stream_options.include_usage`), the Responses API (`usage` on the body,
 * or on `response.completed`'s `response`), legacy completions and
 * embeddings (input only). Cached prompt tokens are part of prompt_tokens.
 */
export const OPENAI_USAGE: UsageFamily = {
  style: 'openai',
  operations: [
    { path: /\/chat\/completions$/, operation: 'chat' },
    { path: /\/responses$/, operation: 'chat' },
    { path: /\/completions$/, operation: 'text_completion' },
    { path: /\/embeddings$/, operation: 'embeddings' },
  ],
  requestModel: { body: true },
  sources: [
    { at: [], usage: 'usage', input: ['prompt_tokens', 'input_tokens'], output: ['completion_tokens', 'output_tokens'], model: 'model' },
    { at: ['response'], usage: 'usage', input: ['input_tokens'], output: ['output_tokens'], model: 'model' },
  ],
};
