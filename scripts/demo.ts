/**
 * The demo: real services, a Feishu-compatible server that prints every message it accepts,
 * dueflow in all mode (the compiled build, as `npm start` runs it), and a walk through the chain:
 * a demo user linked by the host product to its Feishu app (messages arrive as direct cards from
 * the app bot) with a signed group bot as fallback; a suggestion confirmed by pressing its card's
 * button; a missed block, an anomaly, a reminder; a critical anomaly nobody acknowledges, buzzed.
 * Each run starts from an empty demo database and queue prefix (what a run leaves stays there to
 * look at until the next run), so messages of an earlier run never show up in this one.
 * Ctrl-C stops everything the demo started.
 */
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Webhook } from 'standardwebhooks';
import { SignJWT } from 'jose';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { loadConfig } from '../src/config';
import { startFeishuServer } from '../test/support/feishuServer';
import { freePort, projectRoot, startServices } from './services';

const root = projectRoot();
const log = (msg: string) => process.stdout.write(`[demo] ${msg}\n`);

async function waitReady(url: string, timeoutMs = 30_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return await res.json();
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`dueflow not ready at ${url} within ${timeoutMs} ms`);
}

/**
 * The host product's own event receiver: verifies each event's Standard Webhooks signature with
 * the `standardwebhooks` package (as a product would) and prints it; refuses a bad signature.
 */
async function startEventReceiver(): Promise<{
  url: string;
  setSecret(secret: string): void;
  events: Array<{ type: string; data: any }>;
  close(): Promise<void>;
}> {
  let verifier: Webhook | undefined;
  const events: Array<{ type: string; data: any }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        const event = verifier!.verify(body, req.headers as Record<string, string>) as { type: string; data: any };
        events.push(event);
        log(`host product received ${event.type} (webhook-id ${req.headers['webhook-id']}, signature verified): ${JSON.stringify(event.data)}`);
        res.writeHead(204).end();
      } catch (err) {
        log(`host product refused an event: ${(err as Error).message}`);
        res.writeHead(401).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/dueflow-events`,
    events,
    setSecret: (secret) => {
      verifier = new Webhook(secret);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function api(baseUrl: string, method: string, p: string, auth: string, body?: unknown): Promise<any> {
  const res = await fetch(`${baseUrl}${p}`, {
    method,
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`${method} ${p} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Drops the demo's own database and Redis keys (never anything else), so this run starts empty. */
async function clearEarlierRun(mongodbUri: string, db: string, redisUrl: string, prefix: string): Promise<void> {
  const conn = await mongoose.createConnection(mongodbUri, { dbName: db }).asPromise();
  try {
    await conn.dropDatabase();
  } finally {
    await conn.close();
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
  try {
    await redis.connect();
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 500 })) {
      if ((keys as string[]).length) await redis.del(...(keys as string[]));
    }
  } finally {
    redis.disconnect();
  }
  log(`starting from an empty demo database (${db}) and queue prefix (${prefix})`);
}

async function main() {
  const services = await startServices({ dataDir: path.join(root, '.data/demo'), log });
  // The host product's Feishu app, as the Feishu-compatible server plays it: any open_id is a user there.
  const app = {
    appId: 'cli_demo_app',
    appSecret: 'demo-app-secret',
    encryptKey: 'demo-encrypt-key',
    verificationToken: 'demo-verification-token',
    autoRegisterUsers: true,
  };
  const feishu = await startFeishuServer({
    app,
    log: (msg) => {
      if (/app (send|update|urgent)/.test(msg)) log(`Feishu app API: ${msg}`);
    },
    onMessage: (m) => {
      const body = m.body;
      const title = body.card?.header?.title?.content ?? body.content?.post?.zh_cn?.title ?? body.content?.text ?? body.message?.title;
      log(`Feishu group bot received (${body.msg_type ?? 'flow'}): ${title}`);
    },
  });
  const demoDb = 'dueflow_demo';
  const demoPrefix = '{dueflow-demo}';
  await clearEarlierRun(services.mongodbUri, demoDb, services.redisUrl, demoPrefix);
  const port = Number(process.env.PORT ?? (await freePort()));
  const baseUrl = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NODE_ENV: 'development',
    DUEFLOW_MODE: 'all',
    PORT: String(port),
    REDIS_URL: services.redisUrl,
    MONGODB_URI: services.mongodbUri,
    MONGODB_DB: demoDb,
    QUEUE_PREFIX: demoPrefix,
    PUBLIC_BASE_URL: baseUrl,
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    SCAN_INTERVAL_MS: process.env.SCAN_INTERVAL_MS ?? '1000',
    // Anomalies wait 3 s (not 30 s) for others to group with, so the demo moves on quickly.
    DIGEST_HOLD_MS: process.env.DIGEST_HOLD_MS ?? '3000',
    // The detectors' own schedule (30 s by default): every second, so the missed block shows at once.
    DETECTOR_INTERVAL_MS: process.env.DETECTOR_INTERVAL_MS ?? '1000',
    // The maintenance job (reconciler, escalation, card redraws of expired suggestions) every second.
    RECONCILE_INTERVAL_MS: process.env.RECONCILE_INTERVAL_MS ?? '1000',
    FEISHU_APP_ID: app.appId,
    FEISHU_APP_SECRET: app.appSecret,
    FEISHU_ENCRYPT_KEY: app.encryptKey,
    FEISHU_VERIFICATION_TOKEN: app.verificationToken,
    FEISHU_API_BASE: feishu.url,
    // The bundled FerretDB over SQLite serialises writes: 4 jobs at once deliver about 3x faster
    // there than the default 50 (BENCHMARKS.md). A real MongoDB (MONGODB_URI) keeps the default.
    ...(process.env.MONGODB_URI ? {} : { WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? '4' }),
  };
  const config = loadConfig(env);
  const dueflow = spawn(process.execPath, [path.join(root, 'dist/processors/main.js')], { env, stdio: 'inherit' });
  const stopAll = async () => {
    dueflow.kill('SIGTERM');
    await new Promise((r) => dueflow.once('exit', r));
    await feishu.close();
    await services.stop();
    process.exit(0);
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  dueflow.once('exit', (code) => {
    if (code) {
      log(`dueflow exited with ${code}`);
      void services.stop().then(() => process.exit(1));
    }
  });

  const ready = await waitReady(baseUrl);
  log(`readyz: ${JSON.stringify(ready)}`);
  feishu.app.setCallbackUrl(`${baseUrl}/api/v1/feishu/callback`);
  const verified = await feishu.app.verifyUrl();
  log(`Feishu verified the callback URL: HTTP ${verified.status} ${JSON.stringify(verified.body)}`);

  // The host product links its user to their open_id in its Feishu app (service token); a signed
  // group bot is the fallback channel, where an unacknowledged critical anomaly goes in the end.
  const userId = 'demo-user';
  const openId = 'ou_demo0123456789';
  const service = `Bearer ${config.SERVICE_TOKEN}`;
  const userToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setExpirationTime('30d')
    .sign(new TextEncoder().encode(config.JWT_SECRET));
  const user = `Bearer ${userToken}`;
  await api(baseUrl, 'PUT', `/api/v1/users/${userId}/notification/channels/feishu_app`, service, {
    enabled: true,
    receiveIdType: 'open_id',
    receiveId: openId,
  });
  const botToken = 'demoBotToken0123456789';
  const signingSecret = 'demo-signing-secret';
  feishu.registerBot(botToken, { secret: signingSecret });
  await api(baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', user, {
    enabled: true,
    webhookUrl: feishu.botUrl(botToken),
    signingSecret,
    format: 'card',
  });
  await api(baseUrl, 'PUT', `/api/v1/users/${userId}/settings`, service, {
    timeZone: 'Asia/Shanghai',
    language: 'en',
    primaryChannel: 'feishu_app',
    fallbackChannel: 'feishu_bot',
    escalation: { afterMinutes: 0.1 },
  });
  // The host product registers where it wants to hear what happens (the secret is shown once).
  const receiver = await startEventReceiver();
  const endpoint = await api(baseUrl, 'POST', '/api/v1/webhook-endpoints', service, { url: receiver.url, events: ['*'], description: 'the demo host product' });
  receiver.setSecret(endpoint.secret);
  log(`registered webhook endpoint ${endpoint.id} → ${receiver.url}`);
  const cards = () => feishu.app.messagesTo(openId);
  const nextCard = async (after: number) => {
    await waitUntil(() => cards().length > after, 30_000, 'a card from the app bot');
    const m = cards()[after];
    log(
      `Feishu app bot → ${openId}: "${m.card?.header?.title?.content}" [buttons: ${
        feishu.app
          .buttons(m.messageId)
          .map((b) => b.text)
          .join(', ') || 'none'
      }]`,
    );
    return m;
  };
  const sent = await api(baseUrl, 'POST', '/api/v1/notifications', `Bearer ${config.SERVICE_TOKEN}`, {
    userId,
    dedupeKey: `demo-${Date.now()}`,
    triggerType: 'important_urgent_task',
    target: { type: 'task', id: 'demo-task' },
    message: {
      title: 'Finish the quarterly report',
      summary: 'Due today at 18:00 and not in your schedule yet.',
      actionText: 'Open dueflow',
      actionUrl: `${baseUrl}/docs`,
    },
  });
  let record = await api(baseUrl, 'GET', `/api/v1/notification/records/${sent.id}`, user);
  for (let i = 0; i < 150 && !['sent', 'skipped', 'dead'].includes(record.status); i++) {
    await new Promise((r) => setTimeout(r, 100));
    record = await api(baseUrl, 'GET', `/api/v1/notification/records/${sent.id}`, user);
  }
  log(`notification ${sent.id}: ${record.status} on ${record.channel} after ${record.attemptCount} attempt(s)`);

  // Active scheduling: an important and urgent task that becomes urgent in 2 s. The scanner claims
  // its due job, the workflow finds a free slot, and a card naming the task and the slot arrives in
  // the chat, with Confirm and Reject. The demo presses Confirm as the user would.
  const hour = 3600_000;
  const received = cards().length;
  // The host product syncs its tasks by its own ids (one request, one result per item).
  const synced = await api(baseUrl, 'POST', '/api/v1/sync', service, {
    items: [
      {
        op: 'upsert',
        kind: 'task',
        userId,
        externalId: 'plan-task-42',
        data: {
          title: 'Prepare the board presentation',
          priority: 1,
          estimatedMinutes: 60,
          deadline: new Date(Date.now() + 20 * hour).toISOString(),
          urgencyThresholdAt: new Date(Date.now() + 2000).toISOString(),
        },
      },
      {
        op: 'upsert',
        kind: 'task',
        userId,
        externalId: 'plan-task-43',
        data: { title: 'Renew the domain', priority: 3, deadline: new Date(Date.now() + 72 * hour).toISOString() },
      },
    ],
  });
  log(`synced 2 tasks by externalId: ${JSON.stringify(synced.results)}`);
  const task = { title: 'Prepare the board presentation' };
  log(`task "${task.title}" (externalId plan-task-42) is urgent in 2 s; waiting for the scanner...`);
  const suggestion = await nextCard(received);
  const previewId = /previews\/([0-9a-f]{24})/.exec(JSON.stringify(suggestion.card))?.[1];
  const pressed = await feishu.app.press({ messageId: suggestion.messageId, action: 'confirm' });
  log(
    `pressed Confirm in the chat: answered in ${pressed.ms} ms, toast "${pressed.body.toast?.content}"; the card now has buttons: [${
      feishu.app
        .buttons(suggestion.messageId)
        .map((b) => b.text)
        .join(', ') || 'none'
    }]`,
  );
  if (previewId) {
    const preview = await api(baseUrl, 'GET', `/api/v1/active-schedule/previews/${previewId}`, user);
    log(`preview ${previewId}: ${preview.status}, block ${preview.blockId}; on the page: ${baseUrl}/app/previews/${previewId}#token=${userToken}`);
  }
  await waitUntil(() => receiver.events.some((e) => e.type === 'preview.confirmed'), 30_000, 'preview.confirmed at the host product');
  const confirmedEvent = receiver.events.find((e) => e.type === 'preview.confirmed')!;
  log(
    `the host product puts block ${confirmedEvent.data.block?.id} (${confirmedEvent.data.block?.start} – ${confirmedEvent.data.block?.end}) for its task ${confirmedEvent.data.task?.externalId} into its own calendar`,
  );

  // A missed block: a planned block for a task that ended 20 minutes ago and was not marked done.
  // The missed-block detector (run after each scan) raises it; the message asks whether to reschedule.
  const minute = 60_000;
  const makeup = await api(baseUrl, 'POST', '/api/v1/tasks', user, {
    title: 'Review the contract draft',
    priority: 2,
    estimatedMinutes: 45,
    deadline: new Date(Date.now() + 30 * hour).toISOString(),
  });
  const atMissed = cards().length;
  await api(baseUrl, 'POST', '/api/v1/schedule/blocks', user, {
    taskId: makeup.id,
    title: 'Review the contract draft',
    start: new Date(Date.now() - 65 * minute).toISOString(),
    end: new Date(Date.now() - 20 * minute).toISOString(),
  });
  log('added a block that ended 20 min ago and is still "planned"; waiting for the missed-block detector...');
  await nextCard(atMissed);

  // An anomaly reported by another service (service token): one message built from its title and detail.
  const atAnomaly = cards().length;
  const reported = await api(baseUrl, 'POST', '/api/v1/anomalies', `Bearer ${config.SERVICE_TOKEN}`, {
    userId,
    type: 'checkin_missed',
    severity: 'warning',
    targetType: 'checkin',
    targetId: 'daily-standup',
    title: 'Daily check-in missed',
    detail: 'You did not check in for the 09:30 stand-up today.',
    occurredAt: new Date().toISOString(),
    idempotencyKey: `demo-checkin-${Date.now()}`,
  });
  log(`another service reported anomaly ${reported.id}; it waits ${env.DIGEST_HOLD_MS} ms for others to group with...`);
  await nextCard(atAnomaly);
  let anomaly = await api(baseUrl, 'GET', `/api/v1/anomalies/${reported.id}`, `Bearer ${config.SERVICE_TOKEN}`);
  // The message has arrived; the record says `sent` a moment later.
  for (let i = 0; i < 50 && anomaly.status !== 'sent'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    anomaly = await api(baseUrl, 'GET', `/api/v1/anomalies/${reported.id}`, `Bearer ${config.SERVICE_TOKEN}`);
  }
  log(`anomaly ${reported.id}: ${anomaly.status}`);

  // A reminder the user set directly: a due job claimed by the same scanner, sent as written.
  const atReminder = cards().length;
  const reminder = await api(baseUrl, 'POST', '/api/v1/reminders', user, {
    message: { title: 'Stand up and stretch', summary: 'Two hours at the desk: take five minutes.' },
    at: new Date(Date.now() + 2000).toISOString(),
  });
  log(`set reminder ${reminder.id} for 2 s from now; waiting for the scanner...`);
  const reminderCard = await nextCard(atReminder);
  const snoozed = await feishu.app.press({ messageId: reminderCard.messageId, action: 'snooze_10m' });
  log(`pressed Snooze 10 min: "${snoozed.body.toast?.content}"`);

  // A critical anomaly nobody acknowledges: buzzed after escalation.afterMinutes (0.1 here), then
  // sent to the fallback channel (the group bot) after as long again.
  const atCritical = cards().length;
  const critical = await api(baseUrl, 'POST', '/api/v1/anomalies', service, {
    userId,
    type: 'payment_failed',
    severity: 'critical',
    targetType: 'invoice',
    targetId: 'inv-42',
    title: 'Payment to the venue failed',
    detail: 'The card was declined; the booking lapses at noon.',
    occurredAt: new Date().toISOString(),
    idempotencyKey: `demo-critical-${Date.now()}`,
  });
  const criticalCard = await nextCard(atCritical);
  log(`critical anomaly ${critical.id}: nobody presses Acknowledge; waiting for the escalation...`);
  await waitUntil(() => feishu.app.urgents.some((u) => u.messageId === criticalCard.messageId), 30_000, 'the buzz');
  log(`escalation step 1: the card was buzzed (urgent_app) for ${openId}`);
  const atBot = feishu.messages.length;
  await waitUntil(() => feishu.messages.length > atBot, 30_000, 'the fallback message');
  log('escalation step 2: the anomaly went to the fallback channel (the group bot)');

  log('');
  log(`API:         ${baseUrl}`);
  log(`API docs:    ${baseUrl}/docs`);
  log(`User page:   ${baseUrl}/app#token=${userToken}  (the demo user's channel, settings, notifications and suggestions)`);
  log(`Bull Board:  ${baseUrl}/admin/queues  (user ${config.ADMIN_USER}, password ${config.ADMIN_PASSWORD})`);
  log(`Metrics:     ${baseUrl}/metrics`);
  log(`Feishu-compatible server: ${feishu.url} (every message it accepts is printed here)`);
  log(`Demo user token (Authorization: Bearer ...): ${userToken}`);
  log(`Try: curl -H "Authorization: Bearer $TOKEN" ${baseUrl}/api/v1/notification/records`);
  log(
    `The host product's view: curl -H "Authorization: Bearer ${config.SERVICE_TOKEN}" ${baseUrl}/api/v1/events  (every event, in order; ${receiver.events.length} pushed to its endpoint so far)`,
  );
  log('Ctrl-C stops dueflow and the services the demo started.');
}

main().catch((err) => {
  process.stderr.write(`[demo] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
