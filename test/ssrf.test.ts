/** SSRF: webhooks reach only public addresses; private, loopback and odd host forms are refused. */
import { createProviders } from '../src/providers';
import { isAllowedAddress } from '../src/providers/addressGuard';
import { asUser, call } from './support/api';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';

const delivery = { notificationId: 'n1', userId: 'u1', triggerType: 't', target: { type: 'task', id: '1' }, message: { title: 'Hello', summary: 'World' } };

test.each([
  ['10.0.0.1', false],
  ['172.16.5.4', false],
  ['192.168.1.1', false],
  ['169.254.169.254', false],
  ['100.64.0.1', false],
  ['0.0.0.0', false],
  ['127.0.0.1', false],
  ['::1', false],
  ['fc00::1', false],
  ['fe80::1', false],
  ['::ffff:127.0.0.1', false],
  ['::ffff:10.0.0.1', false],
  ['224.0.0.1', false],
  ['8.8.8.8', true],
  ['2001:4860:4860::8888', true],
])('address %s allowed: %s', (address, allowed) => {
  expect(isAllowedAddress(address, false)).toBe(allowed);
});

test('loopback is allowed only when WEBHOOK_ALLOW_LOOPBACK is on', () => {
  expect(isAllowedAddress('127.0.0.1', true)).toBe(true);
  expect(isAllowedAddress('::1', true)).toBe(true);
  expect(isAllowedAddress('10.0.0.1', true)).toBe(false);
});

describe('the guarded providers', () => {
  let feishu: FeishuServer;
  beforeAll(async () => {
    feishu = await startFeishuServer({ autoRegister: true });
  });
  afterAll(async () => {
    await feishu.close();
  });

  test.each([
    ['an IP literal', (port: number) => `http://127.0.0.1:${port}/open-apis/bot/v2/hook/abc`],
    ['a name that resolves to loopback', (port: number) => `http://localhost:${port}/open-apis/bot/v2/hook/abc`],
    ['an IPv6 literal', (port: number) => `http://[::1]:${port}/open-apis/bot/v2/hook/abc`],
  ])('refuse %s without loopback allowed: permanent, nothing sent', async (_name, url) => {
    const guarded = createProviders({ timeoutMs: 2000, allowLoopback: false });
    const outcome = await guarded.feishu_bot.send({ kind: 'feishu_bot', webhookUrl: url(feishu.port), format: 'text' }, delivery);
    expect(outcome).toMatchObject({ kind: 'permanent', code: 'invalid_url' });
    expect(outcome.detail).toContain('not a public address');
    expect(feishu.requests).toHaveLength(0);
  });

  test('with loopback allowed the same request goes through', async () => {
    const guarded = createProviders({ timeoutMs: 2000, allowLoopback: true });
    const outcome = await guarded.feishu_bot.send({ kind: 'feishu_bot', webhookUrl: feishu.botUrl('abc'), format: 'text' }, delivery);
    expect(outcome.kind).toBe('sent');
  });
});

describe('channel URLs', () => {
  let df: TestDueflow;
  beforeAll(async () => {
    df = await startTestDueflow('api', { WEBHOOK_ALLOW_LOOPBACK: 'false' });
  });
  afterAll(async () => {
    await df.stop();
  });

  test.each([
    'https://10.0.0.1/open-apis/bot/v2/hook/abcdef',
    'https://127.0.0.1/open-apis/bot/v2/hook/abcdef',
    'https://2130706433/open-apis/bot/v2/hook/abcdef',
    'https://0x7f000001/open-apis/bot/v2/hook/abcdef',
    'https://[::1]/open-apis/bot/v2/hook/abcdef',
    'https://localhost/open-apis/bot/v2/hook/abcdef',
    'https://user:pw@open.feishu.cn/open-apis/bot/v2/hook/abcdef',
    'http://open.feishu.cn/open-apis/bot/v2/hook/abcdef',
    'ftp://open.feishu.cn/open-apis/bot/v2/hook/abcdef',
    'https://evil.example.com/open-apis/bot/v2/hook/abcdef',
    'https://open.feishu.cn.evil.example.com/open-apis/bot/v2/hook/abcdef',
  ])('%s is refused with a 400 naming body.webhookUrl', async (webhookUrl) => {
    const res = await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', { auth: await asUser('ssrf'), body: { enabled: true, webhookUrl } });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain('body.webhookUrl');
  });
});
