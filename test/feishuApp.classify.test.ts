/** Feishu app answers → what dueflow does with them (pure, no services). */
import { classifyFeishuAppResponse, classifyTokenResponse } from '../src/feishuApp/classify';

const body = (code: number, msg = 'some msg') => ({ code, msg });
const noHeaders = {};

describe('classifyFeishuAppResponse', () => {
  test('code 0 on HTTP 200 is sent', () => {
    expect(classifyFeishuAppResponse(200, { code: 0, msg: 'success', data: { message_id: 'om_1' } }, noHeaders)).toEqual({
      kind: 'sent',
      code: 'ok',
      rateLimited: false,
      httpStatus: 200,
      providerCode: 0,
    });
  });

  test.each([
    [230001, 400],
    [230002, 400],
    [230006, 400],
    [230013, 400],
    [230025, 400],
    [230027, 400],
    [230028, 400],
    [230031, 400],
    [230035, 400],
    [230038, 400],
    [230001, 200],
  ])('code %i (HTTP %i) is permanent feishu_<code> with a detail', (code, status) => {
    const c = classifyFeishuAppResponse(status, body(code), noHeaders);
    expect(c).toMatchObject({ kind: 'permanent', code: `feishu_${code}`, rateLimited: false, providerCode: code, httpStatus: status });
    expect(c.detail).toMatch(/\S+.*: some msg$/);
    expect(c.retryAfterMs).toBeUndefined();
  });

  test.each([99991663, 99991664])('token invalid %i is temporary feishu_<code> (the client retries once)', (code) => {
    expect(classifyFeishuAppResponse(400, body(code), noHeaders)).toMatchObject({
      kind: 'temporary',
      code: `feishu_${code}`,
      rateLimited: false,
      providerCode: code,
    });
  });

  test.each([
    ['429 + 99991400 + reset header', 429, body(99991400), { 'x-ogw-ratelimit-reset': '3' }, 3000],
    ['400 + 99991400 + reset header', 400, body(99991400), { 'x-ogw-ratelimit-reset': '7' }, 7000],
    ['header name in any case', 429, body(99991400), { 'X-Ogw-Ratelimit-Reset': '2' }, 2000],
    ['200 + 230020 + reset header', 200, body(230020), { 'x-ogw-ratelimit-reset': '1' }, 1000],
  ])('rate limited, %s: waits the header', (_name, status, b, headers, wait) => {
    expect(classifyFeishuAppResponse(status, b, headers)).toMatchObject({
      kind: 'temporary',
      code: 'provider_rate_limited',
      rateLimited: true,
      retryAfterMs: wait,
      httpStatus: status,
    });
  });

  test.each([
    ['429 without a code or header', 429, 'Too Many Requests', {}],
    ['429 + 99991400 without header', 429, body(99991400), {}],
    ['400 + 99991400 with a bad header', 400, body(99991400), { 'x-ogw-ratelimit-reset': 'soon' }],
    ['230020 without header', 400, body(230020), { 'x-ogw-ratelimit-reset': '' }],
  ])('rate limited, %s: waits 1-2 s', (_name, status, b, headers) => {
    const c = classifyFeishuAppResponse(status, b, headers);
    expect(c).toMatchObject({ kind: 'temporary', code: 'provider_rate_limited', rateLimited: true });
    expect(c.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(c.retryAfterMs).toBeLessThanOrEqual(2000);
  });

  test('the random wait comes from the given source', () => {
    expect(classifyFeishuAppResponse(429, {}, {}, () => 0).retryAfterMs).toBe(1000);
    expect(classifyFeishuAppResponse(429, {}, {}, () => 0.999).retryAfterMs).toBe(1999);
  });

  test.each([500, 502, 503, 504])('HTTP %i is temporary provider_5xx, with or without a body', (status) => {
    expect(classifyFeishuAppResponse(status, '<html>bad gateway</html>', noHeaders)).toMatchObject({
      kind: 'temporary',
      code: 'provider_5xx',
      rateLimited: false,
      httpStatus: status,
    });
    expect(classifyFeishuAppResponse(status, body(1234), noHeaders)).toMatchObject({ kind: 'temporary', code: 'provider_5xx', providerCode: 1234 });
  });

  test('an unknown non-zero code is permanent payload_invalid with the code and msg in detail', () => {
    const c = classifyFeishuAppResponse(400, body(234567, 'something odd'), noHeaders);
    expect(c).toMatchObject({ kind: 'permanent', code: 'payload_invalid', providerCode: 234567 });
    expect(c.detail).toContain('234567');
    expect(c.detail).toContain('something odd');
  });

  test('no code at all is permanent payload_invalid; a redirect is invalid_url', () => {
    expect(classifyFeishuAppResponse(404, 'not found', noHeaders)).toMatchObject({ kind: 'permanent', code: 'payload_invalid' });
    expect(classifyFeishuAppResponse(200, {}, noHeaders)).toMatchObject({ kind: 'permanent', code: 'payload_invalid' });
    expect(classifyFeishuAppResponse(302, '', { location: 'https://elsewhere' })).toMatchObject({ kind: 'permanent', code: 'invalid_url' });
  });

  test('a string code counts as the number', () => {
    expect(classifyFeishuAppResponse(400, { code: '230002' }, noHeaders)).toMatchObject({ code: 'feishu_230002', providerCode: 230002 });
  });
});

describe('classifyTokenResponse', () => {
  test.each([10014, 10003])('code %i refuses the credentials: permanent feishu_app_credentials_invalid', (code) => {
    const c = classifyTokenResponse(400, body(code, 'app secret invalid'), noHeaders);
    expect(c).toMatchObject({ kind: 'permanent', code: 'feishu_app_credentials_invalid', providerCode: code, rateLimited: false });
    expect(c.detail).toContain(String(code));
  });

  test('rate limits and 5xx at the token endpoint stay temporary', () => {
    expect(classifyTokenResponse(429, body(99991400), { 'x-ogw-ratelimit-reset': '4' })).toMatchObject({
      kind: 'temporary',
      code: 'provider_rate_limited',
      retryAfterMs: 4000,
    });
    expect(classifyTokenResponse(503, 'unavailable', noHeaders)).toMatchObject({ kind: 'temporary', code: 'provider_5xx' });
  });

  test('code 0 without a token is temporary', () => {
    expect(classifyTokenResponse(200, { code: 0 }, noHeaders)).toMatchObject({ kind: 'temporary' });
  });
});
