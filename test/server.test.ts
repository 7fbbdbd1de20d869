import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { createMetrics } from '../src/metrics.ts';
import { startSidecar } from '../src/server.ts';
import { LogCapture } from './helpers/logs.ts';

test('firstops_log_lines_dropped_total follows the log sink\'s count on every scrape', async () => {
  const config = loadConfig({ FIRSTOPS_PORT: '0', FIRSTOPS_ADMIN_PORT: '0', FIRSTOPS_ADMIN_HOST: '127.0.0.1', FIRSTOPS_DEBUG_PORT: 'off', FIRSTOPS_IDENTITY_DIR: '/nonexistent/firstops-test-identity' });
  const sink = { dropped: 0 };
  const sidecar = await startSidecar({ config, logger: createLogger({ level: 'warn', destination: new LogCapture() }), metrics: createMetrics({ defaultMetrics: false }), logSink: sink });
  const scrape = async (): Promise<string | undefined> => {
    const text = await (await fetch(`http://127.0.0.1:${sidecar.adminAddress.port}/metrics`)).text();
    return /^firstops_log_lines_dropped_total (\d+)$/m.exec(text)?.[1];
  };
  try {
    assert.equal(await scrape(), '0');
    sink.dropped = 3;
    assert.equal(await scrape(), '3');
    assert.equal(await scrape(), '3', 'a scrape with nothing new adds nothing');
    sink.dropped = 10;
    assert.equal(await scrape(), '10');
  } finally {
    await sidecar.drain();
  }
});
