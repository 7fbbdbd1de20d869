// Shared by the fake gateway (fakes.ts) and the bench: where the gateway
// reports how many evaluate-hook and MCP requests it has answered.
export const COUNTS_PATH = '/__bench/counts';

export interface GatewayCounts {
  readonly evaluations: number;
  readonly mcp: number;
}
