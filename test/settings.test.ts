/** Per-user settings over real HTTP, against real FerretDB. */
import { randomUUID } from 'node:crypto';
import { loadUserSettings } from '../src/settings/store';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { userToken } from './support/env';

const SETTINGS = '/api/v1/me/settings';
/** Planning settings (working hours, language) default too; bodies without them get these. */
const planning = {
  workingHours: { start: '08:00', end: '22:00' },
  language: 'zh-CN',
  missedBlockGraceMinutes: null,
  primaryChannel: null,
  fallbackChannel: null,
  escalation: { afterMinutes: 15 },
};
const defaults = { timeZone: 'Asia/Shanghai', quietHours: null, optOutTriggerTypes: [], ...planning };

describe('user settings API', () => {
  let df: TestDueflow;
  beforeAll(async () => {
    df = await startTestDueflow('api');
  });
  afterAll(async () => {
    await df?.stop();
  });

  const api = async (user: string, method: string, body?: unknown, raw?: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${await userToken(user)}` };
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${df.baseUrl}${SETTINGS}`, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const fields = (a: { body: any }) => (a.body?.error?.details ?? []).map((d: { field: string }) => d.field);

  test('a user who never saved settings gets the defaults, and nothing is written', async () => {
    const user = `u-${randomUUID()}`;
    expect(await api(user, 'GET')).toEqual({ status: 200, body: defaults });
    expect(await loadUserSettings(df.ctx, user)).toEqual(defaults);
    expect(await df.ctx.models.userSettings.countDocuments({ userId: user })).toBe(0);
  });

  test('PUT replaces; GET and loadUserSettings read it back', async () => {
    const user = `u-${randomUUID()}`;
    const settings = {
      timeZone: 'America/New_York',
      quietHours: { start: '22:00', end: '07:00' },
      optOutTriggerTypes: ['unfinished_feedback'],
      workingHours: { start: '09:30', end: '18:00' },
      language: 'en',
      missedBlockGraceMinutes: 45,
      primaryChannel: 'feishu_app',
      fallbackChannel: 'feishu_bot',
      escalation: { afterMinutes: 5 },
    };
    expect(await api(user, 'PUT', settings)).toEqual({ status: 200, body: settings });
    expect(await api(user, 'GET')).toEqual({ status: 200, body: settings });
    expect(await loadUserSettings(df.ctx, user)).toEqual(settings);

    // Left out → default; quietHours null → removed.
    expect((await api(user, 'PUT', { timeZone: 'Europe/Berlin', quietHours: null })).body).toEqual({
      timeZone: 'Europe/Berlin',
      quietHours: null,
      optOutTriggerTypes: [],
      ...planning,
    });
    await api(user, 'PUT', settings);
    expect((await api(user, 'PUT', { timeZone: 'UTC' })).body).toEqual({ timeZone: 'UTC', quietHours: null, optOutTriggerTypes: [], ...planning });
    expect(await loadUserSettings(df.ctx, user)).toEqual({ timeZone: 'UTC', quietHours: null, optOutTriggerTypes: [], ...planning });
  });

  test('time zones: IANA names and their aliases, stored as given; opt-outs without duplicates', async () => {
    const user = `u-${randomUUID()}`;
    for (const timeZone of ['UTC', 'Asia/Kolkata', 'Asia/Calcutta', 'America/Argentina/Buenos_Aires', 'Etc/GMT-8']) {
      expect([timeZone, (await api(user, 'PUT', { timeZone })).body.timeZone]).toEqual([timeZone, timeZone]);
    }
    const res = await api(user, 'PUT', { timeZone: 'Asia/Shanghai', optOutTriggerTypes: ['important_urgent_task', 'important_urgent_task'] });
    expect(res.body).toEqual({ timeZone: 'Asia/Shanghai', quietHours: null, optOutTriggerTypes: ['important_urgent_task'], ...planning });
  });

  describe('bad input is a 400 naming the field, and changes nothing', () => {
    const user = `v-${randomUUID()}`;
    const stored = {
      timeZone: 'Asia/Tokyo',
      quietHours: { start: '23:00', end: '06:30' },
      optOutTriggerTypes: ['important_urgent_task'],
      workingHours: { start: '07:00', end: '23:00' },
      language: 'en',
      missedBlockGraceMinutes: 30,
      primaryChannel: 'feishu_bot',
      fallbackChannel: null,
      escalation: { afterMinutes: 2.5 },
    };
    beforeAll(async () => {
      expect((await api(user, 'PUT', stored)).status).toBe(200);
    });
    afterEach(async () => {
      expect((await api(user, 'GET')).body).toEqual(stored);
    });

    test.each<[string, unknown, string, RegExp]>([
      ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, 'body.timeZone', /IANA time zone/],
      ['a UTC offset instead of a zone', { timeZone: '+08:00' }, 'body.timeZone', /IANA time zone/],
      ['no time zone', { quietHours: null }, 'body.timeZone', /expected string/],
      ['a start that is not HH:mm', { timeZone: 'UTC', quietHours: { start: '7:00', end: '08:00' } }, 'body.quietHours.start', /HH:mm/],
      ['an hour past 23', { timeZone: 'UTC', quietHours: { start: '22:00', end: '24:00' } }, 'body.quietHours.end', /HH:mm/],
      ['start equal to end', { timeZone: 'UTC', quietHours: { start: '22:00', end: '22:00' } }, 'body.quietHours.end', /must differ from start/],
      ['quiet hours without an end', { timeZone: 'UTC', quietHours: { start: '22:00' } }, 'body.quietHours.end', /expected string/],
      ['a trigger type that is not one', { timeZone: 'UTC', optOutTriggerTypes: ['Not A Type'] }, 'body.optOutTriggerTypes.0', /trigger type/],
      ['opt-outs that are not a list', { timeZone: 'UTC', optOutTriggerTypes: 'unfinished_feedback' }, 'body.optOutTriggerTypes', /expected array/],
      ['an unknown field', { timeZone: 'UTC', timezone: 'UTC' }, 'body', /Unrecognized key: "timezone"/],
      ['working hours ending before they start', { timeZone: 'UTC', workingHours: { start: '22:00', end: '08:00' } }, 'body.workingHours.end', /after start/],
      ['working hours ending as they start', { timeZone: 'UTC', workingHours: { start: '09:00', end: '09:00' } }, 'body.workingHours.end', /after start/],
      ['working hours not in HH:mm', { timeZone: 'UTC', workingHours: { start: '8:00', end: '22:00' } }, 'body.workingHours.start', /HH:mm/],
      ['working hours without an end', { timeZone: 'UTC', workingHours: { start: '08:00' } }, 'body.workingHours.end', /expected string/],
      ['working hours null', { timeZone: 'UTC', workingHours: null }, 'body.workingHours', /expected object/],
      ['an unknown language', { timeZone: 'UTC', language: 'fr' }, 'body.language', /zh-CN' or 'en/],
      ['a negative grace', { timeZone: 'UTC', missedBlockGraceMinutes: -1 }, 'body.missedBlockGraceMinutes', />=0/],
      ['a grace over a day', { timeZone: 'UTC', missedBlockGraceMinutes: 1441 }, 'body.missedBlockGraceMinutes', /<=1440/],
      ['a grace in fractions of a minute', { timeZone: 'UTC', missedBlockGraceMinutes: 1.5 }, 'body.missedBlockGraceMinutes', /whole minutes/],
      ['a primary channel that is no kind', { timeZone: 'UTC', primaryChannel: 'email' }, 'body.primaryChannel', /feishu_app/],
      [
        'a fallback equal to the primary',
        { timeZone: 'UTC', primaryChannel: 'feishu_app', fallbackChannel: 'feishu_app' },
        'body.fallbackChannel',
        /differ from primaryChannel/,
      ],
      ['an escalation of no time', { timeZone: 'UTC', escalation: { afterMinutes: 0 } }, 'body.escalation.afterMinutes', /at least 0.1/],
      ['an escalation past a day', { timeZone: 'UTC', escalation: { afterMinutes: 1441 } }, 'body.escalation.afterMinutes', /at most 1440/],
      ['an escalation without minutes', { timeZone: 'UTC', escalation: {} }, 'body.escalation.afterMinutes', /expected number/],
    ])('%s', async (_name, body, field, message) => {
      const res = await api(user, 'PUT', body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(fields(res)).toContain(field);
      expect(res.body.error.details.find((d: { field: string }) => d.field === field).message).toMatch(message);
    });

    test('a body that is not JSON', async () => {
      const res = await api(user, 'PUT', undefined, '{"timeZone":');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_json');
    });
  });

  test("users do not see or change each other's settings", async () => {
    const [a, b] = [`a-${randomUUID()}`, `b-${randomUUID()}`];
    const mine = { timeZone: 'Europe/Paris', quietHours: { start: '21:00', end: '08:00' }, optOutTriggerTypes: [], ...planning };
    await api(a, 'PUT', mine);
    expect((await api(b, 'GET')).body).toEqual(defaults);
    const theirs = {
      timeZone: 'Asia/Kolkata',
      quietHours: null,
      optOutTriggerTypes: ['unfinished_feedback'],
      workingHours: { start: '10:00', end: '19:00' },
      language: 'en',
      missedBlockGraceMinutes: 10,
      primaryChannel: null,
      fallbackChannel: 'feishu',
      escalation: { afterMinutes: 60 },
    };
    await api(b, 'PUT', theirs);
    expect((await api(a, 'GET')).body).toEqual(mine);
    expect((await api(b, 'GET')).body).toEqual(theirs);
  });

  test('documents written before planning settings existed read with their defaults', async () => {
    const user = `old-${randomUUID()}`;
    await df.ctx.models.userSettings.collection.insertOne({ userId: user, timeZone: 'Europe/Rome', optOutTriggerTypes: [] });
    expect((await api(user, 'GET')).body).toEqual({ timeZone: 'Europe/Rome', quietHours: null, optOutTriggerTypes: [], ...planning });
    // A stored value this version would refuse is not passed on.
    await df.ctx.models.userSettings.collection.updateOne({ userId: user }, { $set: { workingHours: { start: '20:00', end: '09:00' }, language: 'fr' } });
    expect(await loadUserSettings(df.ctx, user)).toMatchObject(planning);
  });

  test('concurrent first PUTs of one user leave one document', async () => {
    const user = `c-${randomUUID()}`;
    const answers = await Promise.all(['UTC', 'Asia/Tokyo', 'Europe/Paris', 'America/Chicago'].map((timeZone) => api(user, 'PUT', { timeZone })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(await df.ctx.models.userSettings.countDocuments({ userId: user })).toBe(1);
  });
});
