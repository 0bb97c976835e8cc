import { startTestDueflow } from './support/harness';
test('all mode starts and stops', async () => { const df = await startTestDueflow('all'); await df.stop(); });
