/**
 * Everything dueflow says during the test suite (its log lines, the output of its processes, and
 * the API answers tests read through support/api.ts) is also written to one folder; at the end the
 * global teardown scans it for secrets the tests used. One leaked secret fails the run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testSecrets } from './env';

export const capturedDir = path.join(os.tmpdir(), `dueflow-captured-${process.env.DUEFLOW_RUN_ID ?? 'manual'}`);

export function capture(source: string, text: string): void {
  fs.mkdirSync(capturedDir, { recursive: true });
  fs.appendFileSync(path.join(capturedDir, `${process.pid}-${source}.log`), text.endsWith('\n') ? text : `${text}\n`);
}

/** Secrets the tests hand to dueflow: none may come back out. */
export const knownSecrets: Array<string | RegExp> = [
  testSecrets.JWT_SECRET,
  testSecrets.SERVICE_TOKEN,
  testSecrets.ADMIN_PASSWORD,
  testSecrets.SECRETS_KEY,
  'sig-secret-123456',
  'the-secret-we-have',
  'signing-secret-never-shown',
  'alice-secret',
  'another-secret-entirely',
  'flow-bearer-token-123',
  'some-token-1234',
  'alicesBotToken123',
  'fuzzToken123',
  // Bot tokens made by the tests: `bot` + 32 hex digits (masked, only `bot1…abcd` may appear).
  /\bbot[0-9a-f]{32}\b/,
  // The app's secrets, and the tenant tokens the Feishu-compatible server issues (`t-` + 40 hex digits).
  /[a-z0-9-]*never-shown[a-z0-9-]*/,
  'authz-encrypt-key-0123456789',
  'fuzz-encrypt-key-0123456789',
  'app-secret-0123456789abcdef',
  /\bt-[0-9a-f]{40}\b/,
];

export function scanCaptured(): string[] {
  if (!fs.existsSync(capturedDir)) return [];
  const leaks: string[] = [];
  for (const file of fs.readdirSync(capturedDir)) {
    const lines = fs.readFileSync(path.join(capturedDir, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const secret of knownSecrets) {
        const hit = typeof secret === 'string' ? line.includes(secret) : secret.test(line);
        if (hit) leaks.push(`${file}:${i + 1}: ${String(secret)} in ${line.slice(0, 200)}`);
      }
    });
  }
  return leaks;
}
