/**
 * The pure part of Feishu card callbacks: the signature over the raw bytes, the AES envelope, the
 * body shapes. Signatures and ciphertexts are made here from Feishu's published algorithm with
 * node:crypto, never by dueflow's own code, so a mistake in dueflow cannot agree with itself.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { CallbackDecryptError, decryptCallback, parseCallback, verifyCallbackSignature } from '../src/feishuApp/callback';

const key = 'unit-encrypt-key-0123456789';
const now = Date.UTC(2026, 0, 15, 9, 0, 0);
const sec = (ms: number) => String(Math.floor(ms / 1000));

function signed(body: string | Buffer, opts: { ts?: string; nonce?: string; key?: string } = {}) {
  const ts = opts.ts ?? sec(now);
  const nonce = opts.nonce ?? 'n-0001';
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const signature = createHash('sha256')
    .update(ts + nonce + (opts.key ?? key))
    .update(raw)
    .digest('hex');
  return { rawBody: raw, headers: { 'x-lark-request-timestamp': ts, 'x-lark-request-nonce': nonce, 'x-lark-signature': signature } as Record<string, string> };
}

function encrypt(plain: string, encryptKey = key, iv = randomBytes(16)): string {
  const cipher = createCipheriv('aes-256-cbc', createHash('sha256').update(encryptKey).digest(), iv);
  return Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final()]).toString('base64');
}

describe('verifyCallbackSignature', () => {
  const body = '{"schema":"2.0","header":{"event_id":"e1"},  "note":"中文"}';

  test('accepts the signature of the raw bytes', () => {
    expect(verifyCallbackSignature({ ...signed(body), encryptKey: key, nowMs: now })).toEqual({ ok: true });
  });

  test('hashes the raw bytes, not a re-serialization of the parsed JSON (the SDK does the latter)', () => {
    const { headers } = signed(JSON.stringify(JSON.parse(body)));
    const r = verifyCallbackSignature({ rawBody: Buffer.from(body), headers, encryptKey: key, nowMs: now });
    expect(r).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  test('refuses a changed byte, another key, another nonce or timestamp', () => {
    const good = signed(body);
    const changed = Buffer.from(good.rawBody);
    changed[changed.length - 2] ^= 1;
    expect(verifyCallbackSignature({ rawBody: changed, headers: good.headers, encryptKey: key, nowMs: now })).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
    expect(verifyCallbackSignature({ ...signed(body, { key: 'another-key-0123456' }), encryptKey: key, nowMs: now })).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
    expect(
      verifyCallbackSignature({ rawBody: good.rawBody, headers: { ...good.headers, 'x-lark-request-nonce': 'n-0002' }, encryptKey: key, nowMs: now }),
    ).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(
      verifyCallbackSignature({
        rawBody: good.rawBody,
        headers: { ...good.headers, 'x-lark-request-timestamp': sec(now - 1000) },
        encryptKey: key,
        nowMs: now,
      }),
    ).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  test('refuses signatures that are not 64 hex digits without throwing', () => {
    const good = signed(body);
    for (const signature of ['', 'abc', good.headers['x-lark-signature'].slice(0, 62), `${good.headers['x-lark-signature']}00`, 'z'.repeat(64)]) {
      const r = verifyCallbackSignature({ rawBody: good.rawBody, headers: { ...good.headers, 'x-lark-signature': signature }, encryptKey: key, nowMs: now });
      expect([signature, r.ok]).toEqual([signature, false]);
    }
  });

  test('names each missing header', () => {
    for (const name of ['x-lark-request-timestamp', 'x-lark-request-nonce', 'x-lark-signature']) {
      const { rawBody, headers } = signed(body);
      delete headers[name];
      const r = verifyCallbackSignature({ rawBody, headers, encryptKey: key, nowMs: now });
      expect(r).toMatchObject({ ok: false, reason: 'missing_headers' });
      expect(!r.ok && r.message).toContain(name);
    }
  });

  test('header names in any case, as Node gives them lowercased', () => {
    const { rawBody, headers } = signed(body);
    const upper = {
      'X-Lark-Request-Timestamp': headers['x-lark-request-timestamp'],
      'X-Lark-Request-Nonce': headers['x-lark-request-nonce'],
      'X-Lark-Signature': headers['x-lark-signature'],
    };
    expect(verifyCallbackSignature({ rawBody, headers: upper, encryptKey: key, nowMs: now })).toEqual({ ok: true });
  });

  test('the timestamp must be within 5 minutes either way', () => {
    const at = (offsetMs: number) => verifyCallbackSignature({ ...signed(body, { ts: sec(now + offsetMs) }), encryptKey: key, nowMs: now });
    expect(at(-4 * 60_000)).toEqual({ ok: true });
    expect(at(4 * 60_000)).toEqual({ ok: true });
    expect(at(-6 * 60_000)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(at(6 * 60_000)).toMatchObject({ ok: false, reason: 'future_timestamp' });
    expect(verifyCallbackSignature({ ...signed(body, { ts: 'yesterday' }), encryptKey: key, nowMs: now })).toMatchObject({
      ok: false,
      reason: 'bad_timestamp',
    });
    expect(verifyCallbackSignature({ ...signed(body, { ts: String(now) }), encryptKey: key, nowMs: now })).toMatchObject({ ok: false }); // milliseconds, not seconds
  });
});

describe('decryptCallback', () => {
  test("Feishu's documented example: 'test key' decrypts to 'hello world'", () => {
    expect(decryptCallback('P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=', 'test key')).toBe('hello world');
  });

  test('round trip with text of any length, including multi-byte', () => {
    for (const text of ['', 'a', 'x'.repeat(16), '{"challenge":"中文✓"}', 'y'.repeat(1000)]) {
      expect(decryptCallback(encrypt(text), key)).toBe(text);
    }
  });

  test('bad input throws a CallbackDecryptError naming the field, never a bare crypto error', () => {
    const iv = Buffer.alloc(16, 3);
    const bad = [
      ['not base64!', key],
      [Buffer.alloc(16).toString('base64'), key], // an IV and nothing else
      [Buffer.alloc(40).toString('base64'), key], // not whole blocks
      [encrypt('{"a":1}', key, iv), 'the-wrong-key-123456'],
    ];
    for (const [input, k] of bad) {
      let thrown: unknown;
      try {
        decryptCallback(input, k);
      } catch (err) {
        thrown = err;
      }
      expect([input, thrown instanceof CallbackDecryptError]).toEqual([input, true]);
      expect((thrown as CallbackDecryptError).field).toBe('encrypt');
    }
  });
});

describe('parseCallback', () => {
  const cardAction = (overrides: { header?: object; event?: object } = {}) => ({
    schema: '2.0',
    header: {
      event_id: 'ev-1',
      event_type: 'card.action.trigger',
      create_time: '1700000000000',
      token: 'vt',
      app_id: 'cli_1',
      tenant_key: 'tk',
      ...overrides.header,
    },
    event: {
      operator: { open_id: 'ou_1', union_id: 'on_1', user_id: 'u1' },
      token: 'card-update-token',
      action: { value: { action: 'confirm', previewId: 'p1' }, tag: 'button' },
      host: 'im_message',
      context: { open_message_id: 'om_1', open_chat_id: 'oc_1' },
      ...overrides.event,
    },
  });

  test('url_verification', () => {
    expect(parseCallback({ type: 'url_verification', challenge: 'ch-1', token: 'vt' })).toEqual({ kind: 'url_verification', challenge: 'ch-1', token: 'vt' });
  });

  test('card.action.trigger → CardActionEvent', () => {
    expect(parseCallback(cardAction())).toEqual({
      kind: 'card_action',
      token: 'vt',
      appId: 'cli_1',
      eventType: 'card.action.trigger',
      event: {
        eventId: 'ev-1',
        operator: { openId: 'ou_1', unionId: 'on_1', userId: 'u1' },
        value: { action: 'confirm', previewId: 'p1' },
        openMessageId: 'om_1',
        openChatId: 'oc_1',
      },
    });
  });

  test('the value is any JSON; user_id and the chat are optional', () => {
    const r = parseCallback(
      cardAction({
        event: { operator: { open_id: 'ou_2', union_id: 'on_2' }, action: { value: 'plain', tag: 'button' }, context: { open_message_id: 'om_2' } },
      }),
    );
    expect(r).toMatchObject({ kind: 'card_action', event: { operator: { openId: 'ou_2', unionId: 'on_2' }, value: 'plain', openMessageId: 'om_2' } });
    expect(r.kind === 'card_action' && r.event.operator.userId).toBeUndefined();
  });

  test('other 2.0 events are recognised, not acted on', () => {
    expect(parseCallback(cardAction({ header: { event_type: 'im.message.receive_v1' } }))).toMatchObject({
      kind: 'other_event',
      eventType: 'im.message.receive_v1',
      eventId: 'ev-1',
      appId: 'cli_1',
    });
  });

  test('a wrong shape names the field', () => {
    const paths = (json: unknown) => {
      const r = parseCallback(json);
      return r.kind === 'invalid' ? r.error.issues.map((i) => i.path.join('.')) : [];
    };
    expect(paths({ type: 'url_verification' })).toEqual(['challenge']);
    expect(paths(cardAction({ event: { context: {} } }))).toEqual(['event.context.open_message_id']);
    expect(paths(cardAction({ header: { app_id: 42 } }))).toEqual(['header.app_id']);
    expect(paths({ hello: 'world' })).toEqual(expect.arrayContaining(['schema', 'header']));
    expect(paths([1, 2])).not.toEqual([]);
    expect(paths(null)).not.toEqual([]);
  });
});
