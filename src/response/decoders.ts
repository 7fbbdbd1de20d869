import { errorStyleFor } from '../http/providers.ts';
import { createAnthropicDecoder } from './anthropic.ts';
import type { DecoderOptions, StreamDecoder } from './decoder.ts';
import { createGeminiDecoder } from './gemini.ts';
import { createOpenAiDecoder } from './openai.ts';
import type { ResponseFamily } from '../policy/response-types.ts';

const DECODERS: Readonly<Record<ResponseFamily, (options: DecoderOptions) => StreamDecoder>> = {
  openai: createOpenAiDecoder,
  anthropic: createAnthropicDecoder,
  gemini: createGeminiDecoder,
};

/** A provider's family follows its error style (src/http/providers.ts): unlisted providers speak OpenAI. */
export function responseFamilyOf(provider: string): ResponseFamily {
  return errorStyleFor(provider);
}

/** A fresh decoder for one response stream. */
export function createStreamDecoder(family: ResponseFamily, options: DecoderOptions = { governText: false }): StreamDecoder {
  return DECODERS[family](options);
}
