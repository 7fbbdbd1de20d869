import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenLocal, readAll, Waiter, type RecordedRequest, type TestServer } from './server.ts';

export type UpstreamHandler = (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface FakeUpstream extends TestServer {
  readonly requests: RecordedRequest[];
  /** Resolves with each request as it arrives. */
  readonly arrivals: Waiter<RecordedRequest>;
  /** Resolves when a request's connection closes before its response finished. */
  readonly aborts: Waiter<RecordedRequest>;
  handle(handler: UpstreamHandler): void;
}

export function chatCompletion(content = 'Hello from the fake upstream'): Record<string, unknown> {
  return {
    id: 'chatcmpl-test', object: 'chat.completion', created: 1_700_000_000, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
  };
}

export function anthropicMessage(text = 'Hello from the fake upstream'): Record<string, unknown> {
  return {
    id: 'msg_test', type: 'message', role: 'assistant', model: 'claude-test',
    content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null,
    usage: { input_tokens: 5, output_tokens: 7 },
  };
}

export function openAiChunk(content: string, finish: string | null = null): string {
  const chunk = {
    id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini',
    choices: [{ index: 0, delta: finish ? {} : { content }, finish_reason: finish, logprobs: null }],
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * An LLM provider stand-in on 127.0.0.1 that records every request and
 * answers through a swappable handler (default: an OpenAI chat completion).
 */
/** The upstream answers every request with these SSE events, one write and one event-loop turn each, as a live stream sends them. */
export function streamEvents(upstream: FakeUpstream, events: readonly string[]): void {
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const event of events) {
      res.write(event);
      await new Promise((resolve) => setImmediate(resolve));
    }
    res.end();
  });
}

export async function startUpstream(initial?: UpstreamHandler): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = [];
  const arrivals = new Waiter<RecordedRequest>();
  const aborts = new Waiter<RecordedRequest>();
  let handler: UpstreamHandler = initial ?? ((_req, res) => sendJson(res, 200, chatCompletion()));
  const server = await listenLocal((req, res) => {
    void (async () => {
      const body = await readAll(req).catch(() => Buffer.alloc(0));
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body };
      requests.push(recorded);
      res.once('close', () => {
        if (!res.writableFinished) aborts.push(recorded);
      });
      arrivals.push(recorded);
      await handler(recorded, res, req);
    })();
  });
  return { ...server, requests, arrivals, aborts, handle: (h) => { handler = h; } };
}
