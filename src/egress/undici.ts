// The parts of undici the sidecar runs, imported one by one. undici's index
// (`import … from 'undici'`) loads all of undici whatever is used: fetch,
// WebSocket, EventSource, the cache stores and interceptors, the mocks, and
// through them Node's own bundled undici and more of node's built-ins. That
// is ~10 MB of resident memory for code that never runs (measured with the
// image's runtime settings: node:http + undici's index 71.0 MB, + these
// modules instead 61.0 MB). Types still come from 'undici'.
import type * as Undici from 'undici';
import AgentModule from 'undici/lib/dispatcher/agent.js';
import DispatcherModule from 'undici/lib/dispatcher/dispatcher.js';
import PoolModule from 'undici/lib/dispatcher/pool.js';
import ProxyAgentModule from 'undici/lib/dispatcher/proxy-agent.js';
import api from 'undici/lib/api/index.js';

export const Dispatcher = DispatcherModule as typeof Undici.Dispatcher;
export const Agent = AgentModule as typeof Undici.Agent;
export const Pool = PoolModule as typeof Undici.Pool;
export const ProxyAgent = ProxyAgentModule as typeof Undici.ProxyAgent;

// What undici's index does on load: request(), stream(), pipeline(),
// upgrade() and connect() on every dispatcher. Doing it twice (when
// something else imports the index too) changes nothing.
Object.assign(Dispatcher.prototype, api);
