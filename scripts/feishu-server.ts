/**
 * Runs the Feishu-compatible server for the demo: `npx tsx scripts/feishu-server.ts`.
 * Env: FEISHU_PORT (default 0 = random), FEISHU_HOST (127.0.0.1), FEISHU_AUTO_REGISTER=true
 * (accept any bot token / flow id), FEISHU_BOTS="token[:secret[:keyword]],…",
 * FEISHU_FLOWS="id[:bearer],…", FEISHU_RATE_LIMIT=false (off; default Feishu's 5/s, 100/min).
 * stdout: one JSON line per event ({event:'listening',url} first, then {event:'message',…} per accepted
 * message, token masked); the request log goes to stderr.
 */
import { maskSecret } from '../src/providers/mask';
import { startFeishuServer } from '../test/support/feishuServer';

function list(value: string | undefined): string[][] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => entry.split(':'));
}

function line(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const server = await startFeishuServer({
    port: Number(process.env.FEISHU_PORT ?? 0),
    host: process.env.FEISHU_HOST ?? '127.0.0.1',
    autoRegister: process.env.FEISHU_AUTO_REGISTER === 'true',
    rateLimit: process.env.FEISHU_RATE_LIMIT === 'false' ? false : undefined,
    log: (msg) => process.stderr.write(`[feishu] ${msg}\n`),
    onMessage: (m) => line({ event: 'message', ...m, token: maskSecret(m.token), receivedAt: new Date(m.receivedAt).toISOString() }),
  });
  for (const [token, secret, keyword] of list(process.env.FEISHU_BOTS))
    server.registerBot(token, { secret: secret || undefined, keyword: keyword || undefined });
  for (const [id, bearerToken] of list(process.env.FEISHU_FLOWS)) server.registerFlow(id, { bearerToken: bearerToken || undefined });

  line({ event: 'listening', url: server.url });
  process.stderr.write(`[feishu] bot URL:  ${server.url}/open-apis/bot/v2/hook/<token>\n[feishu] flow URL: ${server.url}/flow/api/trigger-webhook/<id>\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`[feishu] failed to start: ${String(err)}\n`);
  process.exit(1);
});
