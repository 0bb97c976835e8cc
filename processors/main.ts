/** The one entry point: `node dist/processors/main.js`; DUEFLOW_MODE says api, worker or all. */
import { ConfigError, loadConfig } from '../src/config';
import { createContext } from '../src/context';
import { createLogger } from '../src/logger';
import { startDueflow } from './runtime';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`dueflow: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  if (config.WEBHOOK_ALLOW_LOOPBACK) logger.warn('WEBHOOK_ALLOW_LOOPBACK is on: http://127.0.0.1 webhook URLs are accepted; never use this in production');

  const ctx = await createContext(config, logger);
  const running = await startDueflow(ctx, config.DUEFLOW_MODE);

  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'signal received');
    // Last resort: a dyno is killed 30 s after SIGTERM; leave before that whatever hangs.
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS + 4000).unref();
    running.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

main().catch((err) => {
  process.stderr.write(`dueflow: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
