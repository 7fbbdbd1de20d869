import { errorStyleFor } from '../providers.ts';
import { createAnthropicDecoder } from './anthropic.ts';
import type { StreamDecoder } from './decoder.ts';
import { createGeminiDecoder } from './gemini.ts';
import { createOpenAiDecoder } from './openai.ts';
import type { ResponseFamily } from './types.ts';

const DECODERS: Readonly<Record<ResponseFamily, () => StreamDecoder>> = {
  openai: createOpenAiDecoder,
  anthropic: createAnthropicDecoder,
  gemini: createGeminiDecoder,
};

/** A provider's family follows its error style (src/providers.ts): unlisted providers speak OpenAI. */
export function responseFamilyOf(provider: string): ResponseFamily {
  return errorStyleFor(provider);
}

/** A fresh decoder for one response stream. */
export function createStreamDecoder(family: ResponseFamily): StreamDecoder {
  return DECODERS[family]();
}
