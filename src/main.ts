#!/usr/bin/env node
// The only module with side effects: reads argv and env, starts what was asked, handles signals.
import { ConfigError, loadConfig } from './config.ts';
import { LOG_LEVELS, LineSink, createLogger } from './log.ts';
import { USAGE, nativeProblem, parseCommand, runCheck, runHealthcheck } from './cli.ts';
import { startSidecar } from './server.ts';

const env = process.env;
const command = parseCommand(process.argv.slice(2));

/** Log lines go to stdout through one sink, written out synchronously at exit whatever the cause. */
function stdoutSink(): LineSink {
  const sink = new LineSink();
  process.once('exit', () => sink.flushSync());
  return sink;
}

function fail(message: string, code = 1): never {
  process.stderr.write(`firstops-sidecar: ${message}\n`);
  process.exit(code);
}

/**
 * SIGTERM or SIGINT starts one drain and the process exits with its result
 * (0 after a clean drain). A repeat while draining is ignored: under
 * `npm start` one signal to the process group arrives twice (once directly,
 * once forwarded by npm), and the drain is bounded by its own deadline.
 */
function onSignals(stop: () => Promise<void>, log: (signal: string) => void): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return log(signal);
      stopping = true;
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

switch (command) {
  case undefined:
    fail(`unknown command ${JSON.stringify(process.argv[2])}\n${USAGE}`, 2);
  case 'help':
    process.stdout.write(`${USAGE}\n`);
    break;
  case 'check':
    process.exitCode = await runCheck(env, (line) => process.stdout.write(`${line}\n`));
    break;
  case 'healthcheck':
    process.exitCode = await runHealthcheck(env);
    break;
  case 'injector': {
    const { startInjector } = await import('./injector/index.ts');
    const level = LOG_LEVELS.find((l) => l === env.FIRSTOPS_LOG_LEVEL?.trim().toLowerCase()) ?? 'info';
    const sink = stdoutSink();
    const logger = createLogger({ level, base: { component: 'injector' }, destination: sink });
    const injector = await startInjector({ env, logger, logSink: sink }).catch((err: Error) => fail(err.message, 2));
    onSignals(() => injector.close(), (signal) => logger.info({ signal }, 'already shutting down; signal ignored'));
    break;
  }
  case 'serve': {
    let config;
    try {
      config = loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message, 2);
      throw err;
    }
    // No policy pattern can run without the native RE2 binding: one line, exit 2.
    const native = nativeProblem();
    if (native) fail(native, 2);
    const sink = stdoutSink();
    const logger = createLogger({ level: config.logLevel, destination: sink });
    // A bug that escapes every handler still leaves one JSON line (the sink flushes at exit).
    process.on('uncaughtException', (err) => {
      logger.fatal({ err: { message: err.message, stack: err.stack } }, 'uncaught exception; exiting');
      process.exit(1);
    });
    try {
      const sidecar = await startSidecar({ config, logger, logSink: sink });
      onSignals(async () => {
        await sidecar.drain();
        logger.flush();
      }, (signal) => logger.info({ signal }, 'already draining; signal ignored (FIRSTOPS_DRAIN_TIMEOUT_MS bounds the drain)'));
    } catch (err) {
      // A bad identity or policy file, a port in use: one clear line and a non-zero exit.
      if (err instanceof Error) {
        logger.fatal({ err: { code: (err as { code?: string }).code, message: err.message } }, 'startup failed');
        logger.flush();
        fail(err.message, 2);
      }
      throw err;
    }
    break;
  }
}
