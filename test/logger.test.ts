/** Log lines never carry a secret by key, at any depth a log object has; everything else is kept as it was. */
import { createLogger, redactKeys } from '../src/logger';

const lines = (log: (l: ReturnType<typeof createLogger>) => void) => {
  const out: string[] = [];
  log(createLogger('info', { write: (line: string) => void out.push(line) }));
  return out.map((l) => JSON.parse(l));
};

test('secrets by key are censored at every depth and in arrays; other fields are kept', () => {
  const [line] = lines((l) =>
    l.info(
      {
        token: 'top-secret-token',
        recordId: 'r1',
        channel: { config: { signingSecret: 'sssssssssssssss', webhookUrl: 'https://open.feishu.cn/hook/abc' }, kind: 'feishu_bot' },
        req: { headers: { authorization: 'Bearer xyz', cookie: 'sid=1', accept: 'json' } },
        list: [{ appSecret: 'as' }, 'plain'],
        count: 3,
      },
      'msg',
    ),
  );
  expect(line).toMatchObject({
    token: '[redacted]',
    recordId: 'r1',
    channel: { config: { signingSecret: '[redacted]', webhookUrl: '[redacted]' }, kind: 'feishu_bot' },
    req: { headers: { authorization: '[redacted]', cookie: '[redacted]', accept: 'json' } },
    list: [{ appSecret: '[redacted]' }, 'plain'],
    count: 3,
    msg: 'msg',
  });
  expect(JSON.stringify(line)).not.toMatch(/top-secret|sssss|abc|xyz|sid=1/);
});

test('an error keeps its message and stack; the caller’s object is not changed', () => {
  const given = { err: new Error('boom'), nested: { password: 'p' } };
  const [line] = lines((l) => l.error(given, 'failed'));
  expect(line.err).toMatchObject({ message: 'boom', type: 'Error' });
  expect(line.err.stack).toContain('boom');
  expect(line.nested.password).toBe('[redacted]');
  expect(given.nested.password).toBe('p');
});

test('an object without a secret comes back as itself (no copy on the hot path)', () => {
  const obj = { recordId: 'r', attempt: 1, nested: { code: 'ok', list: [1, 2] } };
  expect(redactKeys(obj)).toBe(obj);
});
