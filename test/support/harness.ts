/** A whole dueflow in the test process, against the real services, torn down without a trace. */
import type { Connection } from 'mongoose';
import type { Config } from '../../src/config';
import type { AppContext } from '../../src/context';
import { closeContext, createContext } from '../../src/context';
import { createLogger } from '../../src/logger';
import type { Running } from '../../processors/runtime';
import { startDueflow } from '../../processors/runtime';
import { testConfig } from './env';
import { capture } from './leakScan';

export interface TestDueflow {
  ctx: AppContext;
  config: Config;
  running: Running;
  baseUrl: string;
  /** Logs written, as parsed JSON lines (for checking that no secret is logged). */
  logs: string[];
  stop(): Promise<void>;
}

/** `cleanup: false` for a second instance sharing another's database and queues: its stop() leaves them. */
export async function startTestDueflow(
  mode: Config['DUEFLOW_MODE'] = 'all',
  overrides: Record<string, string> = {},
  opts: { cleanup?: boolean } = {},
): Promise<TestDueflow> {
  const config = testConfig({ LOG_LEVEL: 'info', ...overrides });
  const logs: string[] = [];
  const logger = createLogger(config.LOG_LEVEL, {
    write: (line: string) => {
      logs.push(line);
      capture('logs', line);
    },
  });
  const ctx = await createContext(config, logger);
  const running = await startDueflow(ctx, mode);
  const baseUrl = `http://127.0.0.1:${running.port}`;
  let stopped = false;
  return {
    ctx,
    config,
    running,
    baseUrl,
    logs,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (opts.cleanup === false) return running.stop();
      // Clean up through fresh handles: stop() closes the context's own connections.
      const cleanup = await createContext(config, createLogger('silent'));
      await running.stop();
      await Promise.all(Object.values(cleanup.queues).map((q) => q.obliterate({ force: true })));
      await clearDatabase(cleanup.mongo);
      await closeContext(cleanup);
    },
  };
}

/**
 * Empties a test database by dropping its collections, never the database: FerretDB v1 (SQLite)
 * deletes a dropped database's file under connections still in use, and a write arriving then
 * reopens it over the old WAL index and crashes the server with SIGBUS (reproduced by dropping
 * a database while writing to it).
 */
export async function clearDatabase(conn: Connection): Promise<void> {
  const db = conn.db;
  if (!db) return;
  for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
    await db.dropCollection(name).catch((err: { code?: number }) => {
      if (err.code !== 26) throw err; // NamespaceNotFound: a concurrent cleanup dropped it first
    });
  }
}
