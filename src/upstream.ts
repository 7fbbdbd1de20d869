import { Agent, type Dispatcher } from 'undici';

export interface DispatcherOptions {
  connectTimeoutMs: number;
  /** Time allowed for response headers; the body has no idle timeout (streams may idle for minutes). */
  headersTimeoutMs: number;
}

/**
 * The connection pool for every outbound hop. `bodyTimeout: 0` because an
 * LLM generation or an MCP GET stream may stay silent for a long time; the
 * client's own disconnect aborts it instead.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  return new Agent({
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  });
}
