import { errorStyleFor, type ErrorStyle } from '../http/providers.ts';
import { ANTHROPIC_USAGE } from './anthropic.ts';
import { GEMINI_USAGE } from './gemini.ts';
import { OPENAI_USAGE } from './openai.ts';
import type { UsageFamily } from './types.ts';

const FAMILIES: Readonly<Record<ErrorStyle, UsageFamily>> = {
  openai: OPENAI_USAGE,
  anthropic: ANTHROPIC_USAGE,
  gemini: GEMINI_USAGE,
};

/** A provider's family follows its error style (src/http/providers.ts): unlisted providers speak OpenAI. */
export function usageFamilyFor(provider: string): UsageFamily {
  return FAMILIES[errorStyleFor(provider)];
}
