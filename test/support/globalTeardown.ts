import fs from 'node:fs';
import { capturedDir, scanCaptured } from './leakScan';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as any).__dueflowServices;
  if (state) {
    await state.services.stop();
    fs.rmSync(state.dataDir, { recursive: true, force: true });
  }
  const leaks = scanCaptured();
  const scanned = fs.existsSync(capturedDir) ? fs.readdirSync(capturedDir).length : 0;
  fs.rmSync(capturedDir, { recursive: true, force: true });
  if (leaks.length) throw new Error(`secrets leaked into logs or API answers:\n${leaks.slice(0, 20).join('\n')}`);
  process.stderr.write(`[leak scan] no secret in ${scanned} captured log and answer files\n`);
}
