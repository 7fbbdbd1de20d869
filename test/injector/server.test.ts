import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AdmissionReviewResponse } from '../../src/injector/admission.ts';
import { InjectorError } from '../../src/injector/errors.ts';
import { startInjector } from '../../src/injector/index.ts';
import type { RunningInjector } from '../../src/injector/index.ts';
import { createTestPki } from './helpers/certs.ts';
import type { TestPki } from './helpers/certs.ts';
import { captureLogs } from './helpers/logs.ts';
import type { LogCapture } from './helpers/logs.ts';
import { TEST_IMAGE, applyAndValidate, decodePatch, deploymentPodReview } from './helpers/reviews.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  fingerprint: string | undefined;
}

/** Calls the webhook the way the API server does: HTTPS, verifying the serving cert against the CA bundle. */
function call(port: number, ca: Buffer, path: string, options: { method?: string; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1',
      port,
      path,
      method: options.method ?? 'GET',
      ca,
      agent: false,
      headers: options.body === undefined ? {} : { 'content-type': 'application/json', accept: 'application/json' },
    }, (res) => {
      const fingerprint = new X509Certificate((res.socket as TLSSocket).getPeerX509Certificate()?.raw ?? Buffer.alloc(0)).fingerprint256;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), fingerprint }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function plainGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject).end();
  });
}

describe('injector over HTTPS', () => {
  let pki: TestPki;
  let logs: LogCapture;
  let injector: RunningInjector;
  let env: Record<string, string>;
  let metricsPort: number;
  /** Stands in for main.ts's LineSink: the injector reads its count at each scrape. */
  const sink = { dropped: 0 };

  before(async () => {
    pki = createTestPki();
    const first = pki.issue('first');
    copyFileSync(first.certFile, `${pki.dir}/tls.crt`);
    copyFileSync(first.keyFile, `${pki.dir}/tls.key`);
    logs = captureLogs();
    env = {
      FIRSTOPS_INJECTOR_HOST: '127.0.0.1',
      FIRSTOPS_INJECTOR_PORT: '0',
      FIRSTOPS_INJECTOR_METRICS_PORT: '0',
      FIRSTOPS_INJECTOR_TLS_CERT: `${pki.dir}/tls.crt`,
      FIRSTOPS_INJECTOR_TLS_KEY: `${pki.dir}/tls.key`,
      FIRSTOPS_INJECTOR_TLS_RELOAD_INTERVAL_MS: '25',
      FIRSTOPS_INJECTOR_SHUTDOWN_DELAY_MS: '0',
      FIRSTOPS_INJECTOR_MAX_REQUEST_BYTES: '65536',
      FIRSTOPS_INJECTOR_SIDECAR_IMAGE: TEST_IMAGE,
      FIRSTOPS_INJECTOR_SIDECAR_ENV: '{"FIRSTOPS_GATEWAY_URL":"https://api.firstops.dev"}',
    };
    injector = await startInjector({ env, logger: logs.logger, logSink: sink });
    assert.ok(injector.port > 0);
    assert.ok(injector.metricsPort !== undefined && injector.metricsPort > 0);
    metricsPort = injector.metricsPort;
  });

  after(async () => {
    await injector?.close();
    pki?.cleanup();
  });

  it('counts the log lines its sink dropped, read at each scrape', async () => {
    const dropped = async (): Promise<string | undefined> =>
      /^firstops_injector_log_lines_dropped_total (\d+)$/m.exec((await plainGet(metricsPort, '/metrics')).body)?.[1];
    assert.equal(await dropped(), '0');
    sink.dropped = 4;
    assert.equal(await dropped(), '4');
    assert.equal(await dropped(), '4', 'a scrape with nothing new adds nothing');
  });

  it('answers an AdmissionReview with an applicable base64 JSONPatch and the same uid', async () => {
    const input = deploymentPodReview();
    const reply = await call(injector.port, pki.caCert, '/mutate?timeout=5s', { method: 'POST', body: JSON.stringify(input) });
    assert.equal(reply.status, 200, reply.body);
    assert.match(String(reply.headers['content-type']), /^application\/json/);
    const body = JSON.parse(reply.body) as AdmissionReviewResponse;
    assert.equal(body.apiVersion, 'admission.k8s.io/v1');
    assert.equal(body.kind, 'AdmissionReview');
    assert.equal(body.response.uid, input.request.uid);
    assert.equal(body.response.allowed, true);
    const pod = applyAndValidate(input.request.object, decodePatch(body));
    assert.equal(pod.spec?.initContainers?.[0]?.name, 'firstops-sidecar');
  });

  it('returns rejections as allowed=false responses, not HTTP errors', async () => {
    const input = deploymentPodReview();
    delete input.request.object.metadata!.annotations!['firstops.dev/agent-secret'];
    const reply = await call(injector.port, pki.caCert, '/mutate', { method: 'POST', body: JSON.stringify(input) });
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.body) as AdmissionReviewResponse;
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status?.message ?? '', /POD_AGENT_SECRET_MISSING/);
  });

  it('refuses clients that do not trust the CA (the cert is really checked)', async () => {
    const other = createTestPki();
    try {
      await assert.rejects(call(injector.port, other.caCert, '/healthz'), /self-signed|unable to verify|certificate/i);
    } finally {
      other.cleanup();
    }
  });

  it('answers bad bodies with stable error codes', async () => {
    const notJson = await call(injector.port, pki.caCert, '/mutate', { method: 'POST', body: '{"apiVersion":' });
    assert.equal(notJson.status, 400);
    assert.equal((JSON.parse(notJson.body) as { error: { code: string } }).error.code, 'ADMISSION_REVIEW_INVALID');
    const tooLarge = await call(injector.port, pki.caCert, '/mutate', { method: 'POST', body: Buffer.alloc(70_000, 0x20) });
    assert.equal(tooLarge.status, 413);
    assert.equal((JSON.parse(tooLarge.body) as { error: { code: string } }).error.code, 'ADMISSION_BODY_TOO_LARGE');
    assert.equal((await call(injector.port, pki.caCert, '/mutate')).status, 405);
    assert.equal((await call(injector.port, pki.caCert, '/nope')).status, 404);
  });

  it('serves /healthz and /metrics on both listeners', async () => {
    assert.equal((await call(injector.port, pki.caCert, '/healthz')).status, 200);
    assert.equal((await plainGet(metricsPort, '/healthz')).status, 200);
    const metrics = await call(injector.port, pki.caCert, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^firstops_injector_injections_total\{namespace="team-a"\} [1-9]/m);
    assert.match(metrics.body, /^firstops_injector_failures_total\{namespace="team-a",code="POD_AGENT_SECRET_MISSING"\} 1$/m);
    assert.match(metrics.body, /^firstops_injector_failures_total\{namespace="unknown",code="ADMISSION_REVIEW_INVALID"\} 1$/m);
    assert.match(metrics.body, /^firstops_injector_request_duration_seconds_count\{outcome="injected"\} [1-9]/m);
    assert.match(metrics.body, /^firstops_injector_tls_cert_not_after_seconds \d+/m);
    const plain = await plainGet(metricsPort, '/metrics');
    assert.match(plain.body, /^firstops_injector_injections_total\{namespace="team-a"\}/m);
    assert.equal((await plainGet(metricsPort, '/mutate')).status, 404, 'no webhook on the plain listener');
  });

  it('reloads the serving certificate when the files change', async () => {
    const before = await call(injector.port, pki.caCert, '/healthz');
    const second = pki.issue('second');
    const mark = logs.lines.length;
    const reloaded = logs.waitFor('webhook certificate reloaded', mark);
    // Key first, then cert: between the two writes the pair does not match and must not be used.
    copyFileSync(second.keyFile, `${pki.dir}/tls.key`);
    copyFileSync(second.certFile, `${pki.dir}/tls.crt`);
    const line = await reloaded;
    const expected = new X509Certificate(second.cert).fingerprint256;
    assert.equal(line.fingerprint, expected);
    const afterReload = await call(injector.port, pki.caCert, '/healthz');
    assert.equal(afterReload.status, 200);
    assert.notEqual(before.fingerprint, afterReload.fingerprint);
    assert.equal(afterReload.fingerprint, expected);
  });
});

describe('injector startup and shutdown', () => {
  it('fails fast naming every bad variable', async () => {
    const logs = captureLogs();
    await assert.rejects(
      startInjector({ env: { FIRSTOPS_INJECTOR_PORT: 'x' }, logger: logs.logger }),
      (err: unknown) => err instanceof InjectorError && err.code === 'INJECTOR_CONFIG_INVALID'
        && /FIRSTOPS_INJECTOR_PORT/.test(err.message) && /FIRSTOPS_INJECTOR_TLS_CERT/.test(err.message)
        && /FIRSTOPS_INJECTOR_SIDECAR_IMAGE/.test(err.message),
    );
  });

  it('fails fast when the certificate and key do not match', async () => {
    const pki = createTestPki();
    try {
      const a = pki.issue('a');
      const b = pki.issue('b');
      await assert.rejects(
        startInjector({
          env: {
            FIRSTOPS_INJECTOR_HOST: '127.0.0.1', FIRSTOPS_INJECTOR_PORT: '0', FIRSTOPS_INJECTOR_SIDECAR_IMAGE: TEST_IMAGE,
            FIRSTOPS_INJECTOR_TLS_CERT: a.certFile, FIRSTOPS_INJECTOR_TLS_KEY: b.keyFile,
          },
          logger: captureLogs().logger,
        }),
        (err: unknown) => err instanceof InjectorError && err.code === 'INJECTOR_TLS_INVALID',
      );
    } finally {
      pki.cleanup();
    }
  });

  it('close() stops listening, and is safe to call twice', async () => {
    const pki = createTestPki();
    try {
      const cert = pki.issue('server');
      const injector = await startInjector({
        env: {
          FIRSTOPS_INJECTOR_HOST: '127.0.0.1', FIRSTOPS_INJECTOR_PORT: '0', FIRSTOPS_INJECTOR_SIDECAR_IMAGE: TEST_IMAGE,
          FIRSTOPS_INJECTOR_TLS_CERT: cert.certFile, FIRSTOPS_INJECTOR_TLS_KEY: cert.keyFile,
          FIRSTOPS_INJECTOR_SHUTDOWN_DELAY_MS: '0',
        },
        logger: captureLogs().logger,
      });
      assert.equal(injector.metricsPort, undefined);
      assert.equal((await call(injector.port, pki.caCert, '/healthz')).status, 200);
      await Promise.all([injector.close(), injector.close()]);
      await assert.rejects(call(injector.port, pki.caCert, '/healthz'), /ECONNREFUSED/);
    } finally {
      pki.cleanup();
    }
  });

  it('close() first turns /readyz to 503 (liveness stays 200) and keeps serving reviews for the shutdown delay, then stops', async () => {
    const pki = createTestPki();
    try {
      const cert = pki.issue('server');
      const injector = await startInjector({
        env: {
          FIRSTOPS_INJECTOR_HOST: '127.0.0.1', FIRSTOPS_INJECTOR_PORT: '0', FIRSTOPS_INJECTOR_METRICS_PORT: '0',
          FIRSTOPS_INJECTOR_SIDECAR_IMAGE: TEST_IMAGE,
          FIRSTOPS_INJECTOR_TLS_CERT: cert.certFile, FIRSTOPS_INJECTOR_TLS_KEY: cert.keyFile,
          FIRSTOPS_INJECTOR_SHUTDOWN_DELAY_MS: '1000',
        },
        logger: captureLogs().logger,
      });
      const started = Date.now();
      const closed = injector.close();
      const ready = await call(injector.port, pki.caCert, '/readyz');
      assert.equal(ready.status, 503, 'readiness fails at once so endpoints drop the pod');
      assert.equal((await plainGet(injector.metricsPort!, '/readyz')).status, 503);
      assert.equal((await call(injector.port, pki.caCert, '/healthz')).status, 200, 'liveness holds during the delay');
      const reply = await call(injector.port, pki.caCert, '/mutate', { method: 'POST', body: JSON.stringify(deploymentPodReview()) });
      assert.equal(reply.status, 200, 'admission requests are still answered during the delay');
      const body = JSON.parse(reply.body) as AdmissionReviewResponse;
      assert.equal(body.response.allowed, true);
      assert.ok(Date.now() - started < 1000, 'the checks above ran inside the delay');
      await closed;
      assert.ok(Date.now() - started >= 990, 'close() waited for the delay');
      await assert.rejects(call(injector.port, pki.caCert, '/healthz'), /ECONNREFUSED/);
    } finally {
      pki.cleanup();
    }
  });
});
