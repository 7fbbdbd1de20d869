// Provider streams and bodies with tool calls, shaped as the real APIs send them, for the response tests.

export function sse(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

const CHUNK = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini' };

function chatChunk(delta: Record<string, unknown>, finish: string | null = null, index = 0): string {
  return sse({ ...CHUNK, choices: [{ index, delta, logprobs: null, finish_reason: finish }] });
}

/** Splits a string into pieces of about `n` characters. */
export function pieces(text: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += n) out.push(text.slice(i, i + n));
  return out;
}

export interface ToolSpec {
  readonly id: string;
  readonly name: string;
  readonly args: Record<string, unknown>;
}

/** Chat Completions: text, then each call (name first, arguments in fragments), then finish_reason, usage and [DONE]. */
export function chatToolStream(text: string, calls: readonly ToolSpec[]): string[] {
  const events = [chatChunk({ role: 'assistant', content: '' })];
  for (const t of pieces(text, 5)) events.push(chatChunk({ content: t }));
  calls.forEach((c, index) => {
    events.push(chatChunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
    for (const f of pieces(JSON.stringify(c.args), 7)) events.push(chatChunk({ tool_calls: [{ index, function: { arguments: f } }] }));
  });
  events.push(chatChunk({}, calls.length ? 'tool_calls' : 'stop'));
  events.push(sse({ ...CHUNK, choices: [], usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 } }));
  events.push('data: [DONE]\n\n');
  return events;
}

/** Chat Completions with two calls whose fragments interleave (index 0, 1, 0, 1, ...). */
export function chatInterleaved(a: ToolSpec, b: ToolSpec): string[] {
  const events = [chatChunk({ role: 'assistant', content: 'two calls' })];
  events.push(chatChunk({ tool_calls: [{ index: 0, id: a.id, type: 'function', function: { name: a.name, arguments: '' } }] }));
  events.push(chatChunk({ tool_calls: [{ index: 1, id: b.id, type: 'function', function: { name: b.name, arguments: '' } }] }));
  const fa = pieces(JSON.stringify(a.args), 4);
  const fb = pieces(JSON.stringify(b.args), 4);
  for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
    if (fa[i]) events.push(chatChunk({ tool_calls: [{ index: 0, function: { arguments: fa[i] } }] }));
    if (fb[i]) events.push(chatChunk({ tool_calls: [{ index: 1, function: { arguments: fb[i] } }] }));
  }
  events.push(chatChunk({}, 'tool_calls'));
  events.push('data: [DONE]\n\n');
  return events;
}

export function chatCompletionBody(text: string | null, calls: readonly ToolSpec[]): Record<string, unknown> {
  return {
    id: 'chatcmpl-1', object: 'chat.completion', created: 1_700_000_000, model: 'gpt-4o-mini',
    choices: [{
      index: 0,
      message: {
        role: 'assistant', content: text, refusal: null,
        ...(calls.length ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } })) } : {}),
      },
      finish_reason: calls.length ? 'tool_calls' : 'stop', logprobs: null,
    }],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
  };
}

const RESPONSE = { id: 'resp_1', object: 'response', created_at: 1_700_000_000, model: 'gpt-4.1', status: 'in_progress', output: [] as unknown[] };

function messageItem(text: string, status = 'completed'): Record<string, unknown> {
  return { id: 'msg_1', type: 'message', status, role: 'assistant', content: status === 'completed' ? [{ type: 'output_text', text, annotations: [] }] : [] };
}
function functionItem(c: ToolSpec, args: string, status = 'completed'): Record<string, unknown> {
  return { id: `fc_${c.id}`, type: 'function_call', status, arguments: args, call_id: c.id, name: c.name };
}

/** Responses API: a message with text, then function_call items with argument deltas, then response.completed repeating them. */
export function responsesToolStream(text: string, calls: readonly ToolSpec[]): string[] {
  let seq = 0;
  const ev = (type: string, body: Record<string, unknown>): string => sse({ type, sequence_number: seq++, ...body }, type);
  const events = [
    ev('response.created', { response: RESPONSE }),
    ev('response.in_progress', { response: RESPONSE }),
    ev('response.output_item.added', { output_index: 0, item: messageItem('', 'in_progress') }),
    ev('response.content_part.added', { output_index: 0, item_id: 'msg_1', content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
  ];
  for (const t of pieces(text, 5)) events.push(ev('response.output_text.delta', { output_index: 0, item_id: 'msg_1', content_index: 0, delta: t, logprobs: [] }));
  events.push(ev('response.output_text.done', { output_index: 0, item_id: 'msg_1', content_index: 0, text, logprobs: [] }));
  events.push(ev('response.content_part.done', { output_index: 0, item_id: 'msg_1', content_index: 0, part: { type: 'output_text', text, annotations: [] } }));
  events.push(ev('response.output_item.done', { output_index: 0, item: messageItem(text) }));
  calls.forEach((c, i) => {
    const output_index = i + 1;
    const args = JSON.stringify(c.args);
    events.push(ev('response.output_item.added', { output_index, item: functionItem(c, '', 'in_progress') }));
    for (const f of pieces(args, 6)) events.push(ev('response.function_call_arguments.delta', { output_index, item_id: `fc_${c.id}`, delta: f }));
    events.push(ev('response.function_call_arguments.done', { output_index, item_id: `fc_${c.id}`, arguments: args }));
    events.push(ev('response.output_item.done', { output_index, item: functionItem(c, args) }));
  });
  const output = [messageItem(text), ...calls.map((c) => functionItem(c, JSON.stringify(c.args)))];
  events.push(ev('response.completed', { response: { ...RESPONSE, status: 'completed', output, usage: { input_tokens: 9, output_tokens: 30, total_tokens: 39 } } }));
  return events;
}

export function responsesBody(text: string, calls: readonly ToolSpec[]): Record<string, unknown> {
  return { ...RESPONSE, status: 'completed', output: [messageItem(text), ...calls.map((c) => functionItem(c, JSON.stringify(c.args)))], usage: { input_tokens: 9, output_tokens: 30, total_tokens: 39 } };
}

const MESSAGE = { id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', stop_sequence: null };

/** Anthropic Messages: a text block, then tool_use blocks with input_json_delta fragments. */
export function anthropicToolStream(text: string, calls: readonly ToolSpec[]): string[] {
  const ev = (type: string, body: Record<string, unknown>): string => sse({ type, ...body }, type);
  const events = [
    ev('message_start', { message: { ...MESSAGE, content: [], stop_reason: null, usage: { input_tokens: 25, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
  ];
  for (const t of pieces(text, 5)) events.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } }));
  events.push(ev('content_block_stop', { index: 0 }));
  calls.forEach((c, i) => {
    const index = i + 1;
    events.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } }));
    events.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
    for (const f of pieces(JSON.stringify(c.args), 6)) events.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: f } }));
    events.push(ev('content_block_stop', { index }));
  });
  events.push(ev('message_delta', { delta: { stop_reason: calls.length ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: 40 } }));
  events.push(ev('message_stop', {}));
  return events;
}

export function anthropicBody(text: string, calls: readonly ToolSpec[]): Record<string, unknown> {
  return {
    ...MESSAGE,
    content: [{ type: 'text', text }, ...calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.args }))],
    stop_reason: calls.length ? 'tool_use' : 'end_turn',
    usage: { input_tokens: 25, output_tokens: 40 },
  };
}

function geminiChunk(parts: unknown[], finish?: string): Record<string, unknown> {
  return {
    candidates: [{ content: { role: 'model', parts }, index: 0, ...(finish ? { finishReason: finish } : {}) }],
    usageMetadata: { promptTokenCount: 17, candidatesTokenCount: 3, totalTokenCount: 20 },
    modelVersion: 'gemini-2.5-flash',
  };
}

/** Gemini with alt=sse (CRLF event ends, as Google sends them): text chunks, then one chunk per functionCall. */
export function geminiToolStream(text: string, calls: readonly ToolSpec[]): string[] {
  const ev = (doc: unknown): string => `data: ${JSON.stringify(doc)}\r\n\r\n`;
  const events = pieces(text, 5).map((t) => ev(geminiChunk([{ text: t }])));
  for (const c of calls) events.push(ev(geminiChunk([{ functionCall: { id: c.id, name: c.name, args: c.args } }])));
  events.push(ev(geminiChunk([{ text: '' }], 'STOP')));
  return events;
}

export function geminiBody(text: string, calls: readonly ToolSpec[]): Record<string, unknown> {
  return geminiChunk([{ text }, ...calls.map((c) => ({ functionCall: { id: c.id, name: c.name, args: c.args } }))], 'STOP');
}

export const SAFE: ToolSpec = { id: 'call_safe', name: 'get_weather', args: { city: 'Paris', unit: 'celsius' } };
export const SHELL_RM: ToolSpec = { id: 'call_rm', name: 'run_shell', args: { command: 'rm -rf /var/lib/app', cwd: '/' } };
export const SHELL_LS: ToolSpec = { id: 'call_ls', name: 'run_shell', args: { command: 'ls -la', cwd: '/tmp' } };
export const KEY = 'sk-abcdefghijklmnopqrstuvwxyz012345';
export const WITH_KEY: ToolSpec = { id: 'call_key', name: 'http_request', args: { url: 'https://api.example.com', headers: { authorization: `Bearer ${KEY}` }, note: 'é ✓ 🌍' } };

/** The issue's two rules (examples/policy.yaml carries the same). */
export const ISSUE_RULES = [
  {
    id: 'no-destructive-shell',
    match: { tool_name: ['*shell*', '*bash*', '*exec*', '*terminal*'], arguments: { '**': '*rm -rf*' } },
    decision: 'deny',
    reason: 'destructive shell command in a tool call',
  },
  {
    id: 'redact-keys-in-tool-calls',
    decision: 'modify',
    redact: [{ name: 'api-key', pattern: '\\b(?:sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16})\\b', replacement: '[redacted-key]' }],
  },
];
