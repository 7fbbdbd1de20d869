// undici ships types for its index only; src/egress/undici.ts imports its modules
// one by one and gives them the index's types.
declare module 'undici/lib/dispatcher/agent.js' { const value: unknown; export default value; }
declare module 'undici/lib/dispatcher/dispatcher.js' { const value: { prototype: object }; export default value; }
declare module 'undici/lib/dispatcher/pool.js' { const value: unknown; export default value; }
declare module 'undici/lib/dispatcher/proxy-agent.js' { const value: unknown; export default value; }
declare module 'undici/lib/api/index.js' { const value: Record<string, unknown>; export default value; }
