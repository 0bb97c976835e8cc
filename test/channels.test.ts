/** The channel settings API over real HTTP, against real FerretDB and the Feishu-compatible server. */
import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { defaultChannelKind, loadChannel } from '../src/channels/store';
import { startFeishuServer, type FeishuServer } from './support/feishuServer';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { userToken } from './support/env';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';

const CHANNELS = '/api/v1/notification/channels';
const secret = (label: string) => `${label}${randomUUID().replace(/-/g, '')}`;

interface Answer {
  status: number;
  body: any;
  text: string;
}

function client(df: () => TestDueflow) {
  return async (user: string, method: string, path: string, body?: unknown, raw?: string): Promise<Answer> => {
    const headers: Record<string, string> = { authorization: `Bearer ${await userToken(user)}` };
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${df().baseUrl}${path}`, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
  };
}

/** The fields a 400 names. */
const fields = (a: Answer) => (a.body?.error?.details ?? []).map((d: { field: string }) => d.field);

describe('notification channels API', () => {
  let df: TestDueflow;
  let feishu: FeishuServer;
  const api = client(() => df);

  beforeAll(async () => {
    [df, feishu] = await Promise.all([startTestDueflow('api'), startFeishuServer({ rateLimit: false })]);
  });
  afterAll(async () => {
    await Promise.all([df?.stop(), feishu?.close()]);
  });
  beforeEach(() => feishu.reset());

  test('feishu_bot: PUT, GET, list, DELETE round trip', async () => {
    const user = `u-${randomUUID()}`;
    const token = secret('bot');
    const put = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(token), format: 'post', keyword: 'dueflow' });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({
      channel: 'feishu_bot',
      enabled: true,
      webhookUrl: `${feishu.url}/open-apis/bot/v2/hook/${token.slice(0, 4)}…${token.slice(-4)}`,
      hasSigningSecret: false,
      format: 'post',
      keyword: 'dueflow',
      lastTest: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect((await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body).toEqual(put.body);
    expect((await api(user, 'GET', CHANNELS)).body).toEqual({ items: [put.body] });

    // PUT replaces: format back to its default, keyword gone.
    const again = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: false, webhookUrl: feishu.botUrl(token) });
    expect(again.body).toMatchObject({ enabled: false, format: 'card', keyword: null });

    expect((await api(user, 'DELETE', `${CHANNELS}/feishu_bot`)).status).toBe(204);
    const gone = await api(user, 'GET', `${CHANNELS}/feishu_bot`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.message).toContain('no feishu_bot channel is configured');
    expect((await api(user, 'DELETE', `${CHANNELS}/feishu_bot`)).status).toBe(404);
    expect((await api(user, 'GET', CHANNELS)).body).toEqual({ items: [] });
  });

  test('feishu (Flow webhook): PUT, GET, list, DELETE round trip', async () => {
    const user = `u-${randomUUID()}`;
    const put = await api(user, 'PUT', `${CHANNELS}/feishu`, {
      enabled: true,
      webhookUrl: feishu.flowUrl(secret('flow')),
      authType: 'bearer',
      bearerToken: secret('bearer'),
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ channel: 'feishu', enabled: true, authType: 'bearer', hasBearerToken: true, lastTest: null });
    expect((await api(user, 'GET', `${CHANNELS}/feishu`)).body).toEqual(put.body);

    const bot = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(secret('bot')) });
    expect((await api(user, 'GET', CHANNELS)).body.items).toEqual([bot.body, put.body]);

    expect((await api(user, 'DELETE', `${CHANNELS}/feishu`)).status).toBe(204);
    expect((await api(user, 'GET', `${CHANNELS}/feishu`)).status).toBe(404);
    expect((await api(user, 'GET', CHANNELS)).body.items).toEqual([bot.body]);
  });

  test('a user sees and changes only their own channels', async () => {
    const [a, b] = [`a-${randomUUID()}`, `b-${randomUUID()}`];
    const mine = await api(a, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(secret('bota')) });
    expect((await api(b, 'GET', `${CHANNELS}/feishu_bot`)).status).toBe(404);
    expect((await api(b, 'GET', CHANNELS)).body).toEqual({ items: [] });
    expect((await api(b, 'POST', `${CHANNELS}/feishu_bot/test`)).status).toBe(404);
    expect((await api(b, 'DELETE', `${CHANNELS}/feishu_bot`)).status).toBe(404);

    const theirs = await api(b, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: false, webhookUrl: feishu.botUrl(secret('botb')), format: 'text' });
    expect(theirs.status).toBe(200);
    expect((await api(b, 'GET', `${CHANNELS}/feishu_bot`)).body).toEqual(theirs.body);
    expect((await api(a, 'GET', `${CHANNELS}/feishu_bot`)).body).toEqual(mine.body);
    expect(await df.ctx.models.notificationChannels.countDocuments({ userId: { $in: [a, b] } })).toBe(2);
  });

  test("a save takes the channel's lock, which a test result's write also takes: while it is held the save waits (a store that needs it)", async () => {
    const user = `u-${randomUUID()}`;
    const first = feishu.botUrl(secret('bot'));
    expect((await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: first })).status).toBe(200);
    const held = await withGuardLock(df.ctx, lockName('channel', `${user}:feishu_bot`), () =>
      api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(secret('bot')) }),
    );
    expect(held.acquired).toBe(true);
    if (!held.acquired) return;
    if (df.ctx.store.guardedUpdates === 'atomic') return expect(held.value.status).toBe(200);
    expect(held.value.status).toBe(503);
    expect(held.value.body.error.code).toBe('store_unavailable');
    expect((await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body.webhookUrl).toBe(`${first.slice(0, first.lastIndexOf('/') + 5)}…${first.slice(-4)}`);
  });

  test('concurrent first PUTs of one channel leave one document', async () => {
    const user = `c-${randomUUID()}`;
    const answers = await Promise.all(
      ['text', 'post', 'card', 'text', 'post'].map((format) =>
        api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(secret('bot')), format }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await df.ctx.models.notificationChannels.countDocuments({ userId: user })).toBe(1);
  });

  describe('bad input is a 400 naming the field, and changes nothing', () => {
    const user = `v-${randomUUID()}`;
    let before: { bot: unknown; flow: unknown };
    const botToken = secret('bot');
    const botUrl = () => feishu.botUrl(botToken);

    beforeAll(async () => {
      const bot = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: botUrl(), signingSecret: secret('sig'), keyword: 'kw' });
      const flow = await api(user, 'PUT', `${CHANNELS}/feishu`, { enabled: true, webhookUrl: feishu.flowUrl(secret('flow')), authType: 'none' });
      expect([bot.status, flow.status]).toEqual([200, 200]);
      before = { bot: bot.body, flow: flow.body };
    });
    afterEach(async () => {
      expect((await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body).toEqual(before.bot);
      expect((await api(user, 'GET', `${CHANNELS}/feishu`)).body).toEqual(before.flow);
    });

    const bot = (over: Record<string, unknown>) => ({ channel: 'feishu_bot', body: { enabled: true, webhookUrl: botUrl(), ...over } });
    const flow = (over: Record<string, unknown>) => ({
      channel: 'feishu',
      body: { enabled: true, webhookUrl: feishu.flowUrl('flowid'), authType: 'none', ...over },
    });

    test.each<[string, () => { channel: string; body: unknown }, string, RegExp]>([
      ['not a URL', () => bot({ webhookUrl: 'not a url' }), 'body.webhookUrl', /must be an absolute URL/],
      ['http to a Feishu host', () => bot({ webhookUrl: 'http://open.feishu.cn/open-apis/bot/v2/hook/abc' }), 'body.webhookUrl', /must use https/],
      [
        'a host that is not allowed',
        () => bot({ webhookUrl: 'https://evil.example.com/open-apis/bot/v2/hook/abc' }),
        'body.webhookUrl',
        /host must be one of open\.feishu\.cn, open\.larksuite\.com$/,
      ],
      [
        'a Flow host for a bot',
        () => bot({ webhookUrl: 'https://www.feishu.cn/open-apis/bot/v2/hook/abc' }),
        'body.webhookUrl',
        /host must be one of open\.feishu\.cn/,
      ],
      [
        'a bot host for a Flow',
        () => flow({ webhookUrl: 'https://open.feishu.cn/flow/api/trigger-webhook/abc' }),
        'body.webhookUrl',
        /host must be one of www\.feishu\.cn, feishu\.cn$/,
      ],
      ['a Flow path for a bot', () => bot({ webhookUrl: feishu.flowUrl('abc') }), 'body.webhookUrl', /path must be \/open-apis\/bot\/v2\/hook\/<token>/],
      [
        'a bot path for a Flow',
        () => flow({ webhookUrl: 'https://www.feishu.cn/open-apis/bot/v2/hook/abc' }),
        'body.webhookUrl',
        /path must be \/flow\/api\/trigger-webhook\/<id>/,
      ],
      ['a path with no token', () => bot({ webhookUrl: 'https://open.feishu.cn/open-apis/bot/v2/hook/' }), 'body.webhookUrl', /path must be/],
      ['a query string', () => bot({ webhookUrl: `${botUrl()}?x=1` }), 'body.webhookUrl', /query string/],
      ['an empty query string', () => bot({ webhookUrl: `${botUrl()}?` }), 'body.webhookUrl', /query string/],
      ['a fragment', () => bot({ webhookUrl: `${botUrl()}#x` }), 'body.webhookUrl', /fragment/],
      ['credentials', () => bot({ webhookUrl: 'https://me:pw@open.feishu.cn/open-apis/bot/v2/hook/abc' }), 'body.webhookUrl', /credentials/],
      ['a port on a Feishu host', () => bot({ webhookUrl: 'https://open.feishu.cn:8443/open-apis/bot/v2/hook/abc' }), 'body.webhookUrl', /port/],
      ['a URL over 2048 characters', () => bot({ webhookUrl: `https://open.feishu.cn/open-apis/bot/v2/hook/${'a'.repeat(2048)}` }), 'body.webhookUrl', /2048/],
      ['no webhookUrl', () => bot({ webhookUrl: undefined }), 'body.webhookUrl', /expected string/],
      ['bearer without a token (none stored)', () => flow({ authType: 'bearer' }), 'body.bearerToken', /required when authType is bearer/],
      ['a token with authType none', () => flow({ bearerToken: 'some-token-1234' }), 'body.bearerToken', /must be absent when authType is none/],
      ['an unknown authType', () => flow({ authType: 'basic' }), 'body.authType', /expected one of/],
      ['an unknown format', () => bot({ format: 'markdown' }), 'body.format', /expected one of "card"\|"post"\|"text"/],
      ['enabled not a boolean', () => bot({ enabled: 'yes' }), 'body.enabled', /expected boolean/],
      ['an empty signing secret', () => bot({ signingSecret: '' }), 'body.signingSecret', /too small|at least/i],
      ['a field of the other kind', () => bot({ authType: 'none' }), 'body', /Unrecognized key: "authType"/],
    ])('%s', async (_name, input, field, message) => {
      const { channel, body } = input();
      const res = await api(user, 'PUT', `${CHANNELS}/${channel}`, body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(fields(res)).toContain(field);
      const detail = res.body.error.details.find((d: { field: string }) => d.field === field);
      expect(detail.message).toMatch(message);
      expect(res.body.error.message).toContain(`${field}: `);
    });

    test('an unknown channel name is a 400 naming params.channel, on every channel route', async () => {
      for (const [method, path] of [
        ['GET', '/slack'],
        ['PUT', '/slack'],
        ['DELETE', '/slack'],
        ['POST', '/slack/test'],
      ]) {
        const res = await api(user, method, `${CHANNELS}${path}`, method === 'PUT' ? bot({}).body : undefined);
        expect([method, res.status, fields(res)]).toEqual([method, 400, ['params.channel']]);
        expect(res.body.error.message).toMatch(/^params\.channel: Invalid option: expected one of "feishu"\|"feishu_bot"/);
      }
    });

    test('a body that is not JSON, or not an object', async () => {
      const broken = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, undefined, '{"enabled": true,');
      expect(broken.status).toBe(400);
      expect(broken.body.error.code).toBe('invalid_json');
      const array = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, [1, 2]);
      expect([array.status, fields(array)]).toEqual([400, ['body']]);
      const none = await api(user, 'PUT', `${CHANNELS}/feishu_bot`);
      expect(none.status).toBe(400);
      expect(fields(none)).toEqual(expect.arrayContaining(['body.enabled', 'body.webhookUrl']));
    });
  });

  test('without WEBHOOK_ALLOW_LOOPBACK, loopback URLs are refused; operator hosts are accepted for both kinds', async () => {
    const strict = await startTestDueflow('api', { WEBHOOK_ALLOW_LOOPBACK: 'false', WEBHOOK_ALLOWED_HOSTS: 'open.feishu.cn,www.feishu.cn,hooks.example.com' });
    const strictApi = client(() => strict);
    try {
      const user = `s-${randomUUID()}`;
      const put = (channel: string, webhookUrl: string) =>
        strictApi(
          user,
          'PUT',
          `${CHANNELS}/${channel}`,
          channel === 'feishu' ? { enabled: true, webhookUrl, authType: 'none' } : { enabled: true, webhookUrl },
        );
      const refused = async (channel: string, url: string, message: RegExp) => {
        const res = await put(channel, url);
        expect([url, res.status, fields(res)]).toEqual([url, 400, ['body.webhookUrl']]);
        expect(res.body.error.details[0].message).toMatch(message);
      };
      await refused('feishu_bot', feishu.botUrl('abc'), /must use https/);
      await refused('feishu_bot', `https://127.0.0.1:${feishu.port}/open-apis/bot/v2/hook/abc`, /host must be one of/);
      // Lark is not in this operator's list; feishu.cn neither.
      await refused('feishu_bot', 'https://open.larksuite.com/open-apis/bot/v2/hook/abc', /^host must be one of open\.feishu\.cn, hooks\.example\.com$/);
      await refused('feishu', 'https://feishu.cn/flow/api/trigger-webhook/abc', /^host must be one of www\.feishu\.cn, hooks\.example\.com$/);

      expect((await put('feishu_bot', 'https://OPEN.feishu.cn/open-apis/bot/v2/hook/abcdefghijklmnopqrstuvwxyz')).body.webhookUrl).toBe(
        'https://open.feishu.cn/open-apis/bot/v2/hook/abcd…wxyz',
      );
      expect((await put('feishu_bot', 'https://hooks.example.com/open-apis/bot/v2/hook/abc')).status).toBe(200);
      expect((await put('feishu', 'https://hooks.example.com/flow/api/trigger-webhook/abc')).status).toBe(200);
      expect((await put('feishu', 'https://www.feishu.cn/flow/api/trigger-webhook/abc')).status).toBe(200);
    } finally {
      await strict.stop();
    }
  });

  describe('secrets', () => {
    test('never appear in answers, stored documents or logs; GET shows the mask', async () => {
      const user = `sec-${randomUUID()}`;
      const secrets = { botToken: secret('bot'), signingSecret: secret('sig'), flowId: secret('flow'), bearerToken: secret('bearer') };
      feishu.registerBot(secrets.botToken, { secret: secrets.signingSecret });
      feishu.registerFlow(secrets.flowId, { bearerToken: secrets.bearerToken });
      const answers: Answer[] = [];
      const call = async (...args: Parameters<typeof api>) => {
        const a = await api(...args);
        answers.push(a);
        return a;
      };

      const bot = await call(user, 'PUT', `${CHANNELS}/feishu_bot`, {
        enabled: true,
        webhookUrl: feishu.botUrl(secrets.botToken),
        signingSecret: secrets.signingSecret,
      });
      const flow = await call(user, 'PUT', `${CHANNELS}/feishu`, {
        enabled: true,
        webhookUrl: feishu.flowUrl(secrets.flowId),
        authType: 'bearer',
        bearerToken: secrets.bearerToken,
      });
      expect([bot.status, flow.status]).toEqual([200, 200]);
      await call(user, 'GET', `${CHANNELS}/feishu_bot`);
      await call(user, 'GET', `${CHANNELS}/feishu`);
      await call(user, 'GET', CHANNELS);
      expect((await call(user, 'POST', `${CHANNELS}/feishu_bot/test`)).body).toEqual({ ok: true, code: 'ok', httpStatus: 200 });
      expect((await call(user, 'POST', `${CHANNELS}/feishu/test`)).body).toEqual({ ok: true, code: 'ok', httpStatus: 200 });
      // A failing test echoes nothing either.
      feishu.failNext(1, { code: 19021 });
      expect((await call(user, 'POST', `${CHANNELS}/feishu_bot/test`)).body.ok).toBe(false);

      const get = await api(user, 'GET', `${CHANNELS}/feishu_bot`);
      expect(get.body.webhookUrl).toBe(`${feishu.url}/open-apis/bot/v2/hook/${secrets.botToken.slice(0, 4)}…${secrets.botToken.slice(-4)}`);
      expect(get.body.hasSigningSecret).toBe(true);
      expect(get.body).not.toHaveProperty('signingSecret');
      const flowGet = await api(user, 'GET', `${CHANNELS}/feishu`);
      expect(flowGet.body).toMatchObject({
        hasBearerToken: true,
        webhookUrl: `${feishu.url}/flow/api/trigger-webhook/${secrets.flowId.slice(0, 4)}…${secrets.flowId.slice(-4)}`,
      });
      expect(flowGet.body).not.toHaveProperty('bearerToken');

      expect(df.logs.some((line) => line.includes('channel test message'))).toBe(true);
      const stored = JSON.stringify(await df.ctx.models.notificationChannels.collection.find({ userId: user }).toArray());
      expect(stored).toContain('webhookUrlSealed');
      const everything = { answers: answers.map((a) => a.text).join('\n'), stored, logs: df.logs.join('\n') };
      for (const [where, text] of Object.entries(everything)) {
        for (const [name, value] of Object.entries(secrets)) {
          expect([where, name, text.includes(value)]).toEqual([where, name, false]);
        }
      }

      // The domain function the processor uses gets them back.
      const loaded = await loadChannel(df.ctx, user, 'feishu_bot');
      expect(loaded).toEqual({
        enabled: true,
        config: { kind: 'feishu_bot', webhookUrl: feishu.botUrl(secrets.botToken), signingSecret: secrets.signingSecret, format: 'card' },
      });
      expect(await loadChannel(df.ctx, user, 'feishu')).toEqual({
        enabled: true,
        config: { kind: 'feishu', webhookUrl: feishu.flowUrl(secrets.flowId), authType: 'bearer', bearerToken: secrets.bearerToken },
      });
      expect(await loadChannel(df.ctx, `nobody-${randomUUID()}`, 'feishu')).toBeNull();
    });

    test('a PUT that omits a stored secret keeps it; signingSecret null and authType none remove it', async () => {
      const user = `keep-${randomUUID()}`;
      const [botToken, signingSecret, flowId, bearerToken] = [secret('bot'), secret('sig'), secret('flow'), secret('bearer')];
      feishu.registerBot(botToken, { secret: signingSecret });
      feishu.registerFlow(flowId, { bearerToken });
      const putBot = (body: Record<string, unknown>) =>
        api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(botToken), ...body });
      const putFlow = (body: Record<string, unknown>) => api(user, 'PUT', `${CHANNELS}/feishu`, { enabled: true, webhookUrl: feishu.flowUrl(flowId), ...body });
      const testOf = async (channel: string) => (await api(user, 'POST', `${CHANNELS}/${channel}/test`)).body;

      expect((await putBot({ signingSecret })).body.hasSigningSecret).toBe(true);
      expect((await putBot({ format: 'text' })).body.hasSigningSecret).toBe(true);
      expect(await testOf('feishu_bot')).toMatchObject({ ok: true });
      expect((await putBot({ signingSecret: null })).body.hasSigningSecret).toBe(false);
      expect(await testOf('feishu_bot')).toMatchObject({ ok: false, code: 'feishu_19021' });

      expect((await putFlow({ authType: 'bearer', bearerToken })).body.hasBearerToken).toBe(true);
      expect((await putFlow({ authType: 'bearer' })).body.hasBearerToken).toBe(true);
      expect(await testOf('feishu')).toMatchObject({ ok: true });
      expect((await putFlow({ authType: 'none' })).body).toMatchObject({ authType: 'none', hasBearerToken: false });
      expect(await testOf('feishu')).toMatchObject({ ok: false, code: 'provider_auth_failed', httpStatus: 401 });
      const refused = await putFlow({ authType: 'bearer' });
      expect([refused.status, fields(refused)]).toEqual([400, ['body.bearerToken']]);
    });
  });

  describe('test message', () => {
    test('goes through the provider, is recorded on the channel, and writes no notification record', async () => {
      const user = `t-${randomUUID()}`;
      const [botToken, signingSecret] = [secret('bot'), secret('sig')];
      feishu.registerBot(botToken, { secret: signingSecret, keyword: '提醒' });
      const put = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: feishu.botUrl(botToken), signingSecret, keyword: '提醒' });
      expect(put.status).toBe(200);

      const ok = await api(user, 'POST', `${CHANNELS}/feishu_bot/test`);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ ok: true, code: 'ok', httpStatus: 200 });
      expect(feishu.messages).toHaveLength(1);
      expect(feishu.messages[0].token).toBe(botToken);
      expect(feishu.messages[0].body.card.header.title.content).toBe('提醒 dueflow test message');
      const afterOk = (await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body;
      expect(afterOk.lastTest).toEqual({ status: 'ok', errorCode: null, error: null, at: expect.any(String) });
      expect(Date.now() - Date.parse(afterOk.lastTest.at)).toBeLessThan(60_000);
      expect(afterOk.updatedAt).toBe(put.body.updatedAt); // a test is not a change of configuration

      // The wrong secret: Feishu refuses the signature.
      const wrong = await api(user, 'PUT', `${CHANNELS}/feishu_bot`, {
        enabled: true,
        webhookUrl: feishu.botUrl(botToken),
        signingSecret: 'not-the-secret',
        keyword: '提醒',
      });
      expect(wrong.body.lastTest).toBeNull(); // a PUT clears the last result
      const failed = await api(user, 'POST', `${CHANNELS}/feishu_bot/test`);
      expect(failed.status).toBe(200);
      expect(failed.body).toMatchObject({ ok: false, code: 'feishu_19021', httpStatus: 400, detail: expect.stringContaining('signature') });
      expect(feishu.messages).toHaveLength(1);
      expect((await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body.lastTest).toEqual({
        status: 'failed',
        errorCode: 'feishu_19021',
        error: failed.body.detail,
        at: expect.any(String),
      });

      expect(await df.ctx.models.notificationRecords.countDocuments()).toBe(0);
    });

    test('a Flow channel with a bearer token', async () => {
      const user = `tf-${randomUUID()}`;
      const [flowId, bearerToken] = [secret('flow'), secret('bearer')];
      feishu.registerFlow(flowId, { bearerToken });
      await api(user, 'PUT', `${CHANNELS}/feishu`, { enabled: true, webhookUrl: feishu.flowUrl(flowId), authType: 'bearer', bearerToken });
      expect((await api(user, 'POST', `${CHANNELS}/feishu/test`)).body).toEqual({ ok: true, code: 'ok', httpStatus: 200 });
      expect(feishu.messages[0].body).toMatchObject({ user_id: user, trigger_type: 'channel_test', message: { title: 'dueflow test message' } });
      expect(feishu.requests[0].headers.authorization).toBe(`Bearer ${bearerToken}`);
    });

    test('an unreachable webhook is a failed test, not an error', async () => {
      const user = `tu-${randomUUID()}`;
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: true, webhookUrl: `http://127.0.0.1:${port}/open-apis/bot/v2/hook/nothing-listens-here` });
      const res = await api(user, 'POST', `${CHANNELS}/feishu_bot/test`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: false, code: 'network_error' });
      expect((await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body.lastTest).toMatchObject({ status: 'failed', errorCode: 'network_error' });
    });

    test('a missing channel is a 404, a disabled one a 409; nothing is sent', async () => {
      const user = `td-${randomUUID()}`;
      const missing = await api(user, 'POST', `${CHANNELS}/feishu_bot/test`);
      expect(missing.status).toBe(404);
      expect(missing.body.error.message).toContain('no feishu_bot channel is configured');
      const token = secret('bot');
      feishu.registerBot(token);
      await api(user, 'PUT', `${CHANNELS}/feishu_bot`, { enabled: false, webhookUrl: feishu.botUrl(token) });
      const disabled = await api(user, 'POST', `${CHANNELS}/feishu_bot/test`);
      expect(disabled.status).toBe(409);
      expect(disabled.body.error).toEqual({
        code: 'channel_disabled',
        message: expect.stringContaining('the feishu_bot channel is disabled; enable it'),
        details: null,
      });
      expect(feishu.requests).toHaveLength(0);
      expect((await api(user, 'GET', `${CHANNELS}/feishu_bot`)).body.lastTest).toBeNull();
    });
  });

  test('defaultChannelKind: the enabled one, feishu_bot first; else the first configured; else feishu_bot', async () => {
    const user = `d-${randomUUID()}`;
    const put = (channel: string, enabled: boolean) =>
      api(
        user,
        'PUT',
        `${CHANNELS}/${channel}`,
        channel === 'feishu' ? { enabled, webhookUrl: feishu.flowUrl('f'), authType: 'none' } : { enabled, webhookUrl: feishu.botUrl('b') },
      );
    expect(await defaultChannelKind(df.ctx, user)).toBe('feishu_bot');
    await put('feishu', false);
    expect(await defaultChannelKind(df.ctx, user)).toBe('feishu');
    await put('feishu_bot', false);
    expect(await defaultChannelKind(df.ctx, user)).toBe('feishu_bot');
    await put('feishu', true);
    expect(await defaultChannelKind(df.ctx, user)).toBe('feishu');
    await put('feishu_bot', true);
    expect(await defaultChannelKind(df.ctx, user)).toBe('feishu_bot');
  });

  test('the OpenAPI document describes the channel routes and both bodies', async () => {
    const doc = (await (await fetch(`${df.baseUrl}/openapi.json`)).json()) as any;
    const one = doc.paths['/api/v1/notification/channels/{channel}'];
    expect(Object.keys(one).sort()).toEqual(['delete', 'get', 'put']);
    expect(one.put.tags).toEqual(['notification channels']);
    const body = one.put.requestBody.content['application/json'].schema;
    expect(body.oneOf.map((s: any) => s.title)).toEqual(['FeishuFlowChannelBody', 'FeishuBotChannelBody', 'FeishuAppChannelBody']);
    expect(body.oneOf[1].properties.format.enum).toEqual(['card', 'post', 'text']);
    expect(doc.paths['/api/v1/notification/channels/{channel}/test'].post.responses['200']).toBeDefined();
    expect(doc.paths['/api/v1/notification/channels'].get.responses['200']).toBeDefined();
  });
});
