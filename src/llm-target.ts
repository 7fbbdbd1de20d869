/** What an `/llm/<provider>/<rest>` path names: shared by the LLM route and the debug dry run, so both govern the same event. */
export interface LlmTarget {
  readonly provider: string;
  /** The upstream path, `/` when the path ends after the provider. */
  readonly rest: string;
}

const PREFIX = '/llm/';

/** Splits a path that starts with `/llm/` (the caller checked) into provider and upstream path. */
export function splitLlmPath(path: string): LlmTarget {
  const afterPrefix = path.slice(PREFIX.length);
  const slash = afterPrefix.indexOf('/');
  return slash === -1 ? { provider: afterPrefix, rest: '/' } : { provider: afterPrefix.slice(0, slash), rest: afterPrefix.slice(slash) };
}

/** `openai.v1.chat.completions` for `/llm/openai/v1/chat/completions`: the event's tool name. */
export function llmToolName(provider: string, rest: string): string {
  return `${provider}.${rest.replace(/^\/+|\/+$/g, '').replaceAll('/', '.')}`;
}
