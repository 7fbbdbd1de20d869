// Provider answers with usage, shaped as the real APIs send them, for the usage tests and the Prometheus test.
import type { ServerResponse } from 'node:http';
import { anthropicMessage, openAiChunk } from '../helpers/upstream.ts';

export function sseEvent(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

/** An OpenAI chat stream sent with stream_options.include_usage: every chunk has usage null, then a usage-only chunk. */
export function openAiUsageStream(words: readonly string[], usage = { prompt_tokens: 21, completion_tokens: 4, total_tokens: 25 }): string[] {
  const withNull = (line: string): string => line.replace(/\}\n\n$/, ',"usage":null}\n\n');
  return [
    ...words.map((w) => withNull(openAiChunk(w))),
    withNull(openAiChunk('', 'stop')),
    sseEvent({ id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini-2024-07-18', choices: [], usage }),
    'data: [DONE]\n\n',
  ];
}

export function responsesBody(): Record<string, unknown> {
  return {
    id: 'resp_1', object: 'response', created_at: 1_700_000_000, status: 'completed', model: 'gpt-4.1-2025-04-14',
    output: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'ok', annotations: [] }] }],
    usage: { input_tokens: 13, output_tokens: 2, total_tokens: 15, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } },
  };
}

export function embeddingsBody(): Record<string, unknown> {
  return { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 } };
}

/** An Anthropic message stream: input in message_start, cumulative output in message_delta. */
export function anthropicStream(text: string, usage = { input: 30, output: 9 }): string[] {
  return [
    sseEvent({ type: 'message_start', message: { ...anthropicMessage(''), content: [], stop_reason: null, usage: { input_tokens: usage.input, output_tokens: 1 } } }, 'message_start'),
    sseEvent({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
    sseEvent({ type: 'ping' }, 'ping'),
    sseEvent({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta'),
    sseEvent({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
    sseEvent({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output } }, 'message_delta'),
    sseEvent({ type: 'message_stop' }, 'message_stop'),
  ];
}

export function geminiChunk(text: string, output: number): Record<string, unknown> {
  return {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0 }],
    usageMetadata: { promptTokenCount: 17, candidatesTokenCount: output, totalTokenCount: 17 + output },
    modelVersion: 'gemini-2.5-flash',
  };
}

export function writeStream(res: ServerResponse, events: readonly string[], headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', ...headers });
  for (const e of events) res.write(e);
  res.end();
}
