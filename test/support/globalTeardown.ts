import fs from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as any).__dueflowServices;
  if (!state) return;
  await state.services.stop();
  fs.rmSync(state.dataDir, { recursive: true, force: true });
}
