import type { UsageFamily } from './types.ts';

/**
 * Gemini (providers named `google` or `gemini`): `usageMetadata` on each
 * GenerateContentResponse, cumulative, so the last one in a stream (SSE with
 * `alt=sse`, or a streamed JSON array) is the total. Output includes
 * thinking tokens, which are billed as output. The model is in the path.
 */
export const GEMINI_USAGE: UsageFamily = {
  style: 'gemini',
  operations: [
    { path: /\/models\/[^/:]+:(?:generateContent|streamGenerateContent)$/, operation: 'generate_content' },
    { path: /\/models\/[^/:]+:(?:embedContent|batchEmbedContents)$/, operation: 'embeddings' },
  ],
  requestModel: { path: /\/models\/([^/:]+):/ },
  sources: [
    { at: [], usage: 'usageMetadata', input: ['promptTokenCount', 'toolUsePromptTokenCount'], output: ['candidatesTokenCount', 'thoughtsTokenCount'], model: 'modelVersion' },
  ],
};
