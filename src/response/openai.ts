import { assembleDecoder, createCallTable, createTextCollector, isObject, NO_EFFECT, type DecoderOptions, type StreamDecoder } from './decoder.ts';
import { createChatReader, isChatChunk } from './openai-chat.ts';
import { createResponsesReader, isResponsesEvent } from './openai-responses.ts';

/**
 * OpenAI-style streams: Chat Completions chunks and Responses API events are
 * told apart per event (a Responses event has a `type` under `response.`, a
 * chunk a `choices` array), so the one decoder serves both endpoints and the
 * compatible APIs that speak either.
 */
export function createOpenAiDecoder(options: DecoderOptions): StreamDecoder {
  const calls = createCallTable();
  const text = createTextCollector();
  const chat = createChatReader(calls, text, options.governText);
  const responses = createResponsesReader(calls, text, options.governText);
  return assembleDecoder(calls, text, {
    // `_call` also finds `tool_calls`, `function_call` and every Responses call item and its argument events.
    markers: ['_call'],
    read(doc) {
      if (!isObject(doc)) return NO_EFFECT;
      if (isResponsesEvent(doc)) return responses.read(doc);
      if (isChatChunk(doc)) return chat.read(doc);
      return NO_EFFECT;
    },
    done: chat.done,
    rewrite(doc, units) {
      if (!isObject(doc)) return;
      if (isResponsesEvent(doc)) responses.rewrite(doc, units);
      else if (isChatChunk(doc)) chat.rewrite(doc, units);
    },
  });
}
