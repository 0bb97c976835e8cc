/** Starts (or finds) real Redis and a real MongoDB-compatible server once for the whole suite. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServices } from '../../scripts/services';

export default async function globalSetup(): Promise<void> {
  process.env.DUEFLOW_RUN_ID = `${process.pid}-${Date.now()}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dueflow-test-'));
  const services = await startServices({ dataDir, log: (m) => process.stderr.write(`[services] ${m}\n`) });
  process.env.TEST_REDIS_URL = services.redisUrl;
  process.env.TEST_MONGODB_URI = services.mongodbUri;
  (globalThis as any).__dueflowServices = { services, dataDir };
}
