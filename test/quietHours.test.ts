import { quietHoursEnd } from '../src/settings/quietHours';

const at = (iso: string) => new Date(iso);
const end = (q: { start: string; end: string } | null | undefined, tz: string, now: string) => quietHoursEnd(q, tz, at(now))?.toISOString() ?? null;

describe('quietHoursEnd', () => {
  const night = { start: '22:00', end: '07:00' };

  test('no quiet hours, or start == end, means never quiet', () => {
    expect(end(null, 'Asia/Shanghai', '2024-05-01T16:00:00Z')).toBeNull();
    expect(end(undefined, 'Asia/Shanghai', '2024-05-01T16:00:00Z')).toBeNull();
    for (const t of ['00:00', '07:00', '22:00', '23:59']) {
      expect(end({ start: t, end: t }, 'Asia/Shanghai', '2024-05-01T16:00:00Z')).toBeNull();
    }
  });

  describe('Asia/Shanghai (UTC+8, no DST), 22:00 to 07:00 crossing midnight', () => {
    test.each([
      ['21:59 local: not yet', '2024-05-01T13:59:00Z', null],
      ['22:00 local: starts', '2024-05-01T14:00:00Z', '2024-05-01T23:00:00.000Z'],
      ['23:30 local: ends tomorrow 07:00', '2024-05-01T15:30:00Z', '2024-05-01T23:00:00.000Z'],
      ['00:00 local: ends today 07:00', '2024-05-01T16:00:00Z', '2024-05-01T23:00:00.000Z'],
      ['06:59:59.999 local: still quiet', '2024-05-01T22:59:59.999Z', '2024-05-01T23:00:00.000Z'],
      ['07:00 local: over', '2024-05-01T23:00:00Z', null],
      ['noon local', '2024-05-02T04:00:00Z', null],
      ['last day of the month, 23:00 local: ends the 1st', '2024-02-29T15:00:00Z', '2024-02-29T23:00:00.000Z'],
      ["new year's eve 22:30 local", '2024-12-31T14:30:00Z', '2024-12-31T23:00:00.000Z'],
    ])('%s', (_name, now, expected) => {
      expect(end(night, 'Asia/Shanghai', now)).toBe(expected);
    });
  });

  describe('Asia/Shanghai, 12:00 to 14:00 within a day', () => {
    const lunch = { start: '12:00', end: '14:00' };
    test.each([
      ['11:59', '2024-05-02T03:59:00Z', null],
      ['12:00', '2024-05-02T04:00:00Z', '2024-05-02T06:00:00.000Z'],
      ['13:59:30', '2024-05-02T05:59:30Z', '2024-05-02T06:00:00.000Z'],
      ['14:00', '2024-05-02T06:00:00Z', null],
      ['23:00', '2024-05-02T15:00:00Z', null],
    ])('%s local', (_name, now, expected) => {
      expect(end(lunch, 'Asia/Shanghai', now)).toBe(expected);
    });
  });

  test('the local date decides, not the UTC date (Shanghai is already tomorrow)', () => {
    // 2024-05-01T17:00Z is 01:00 on May 2 in Shanghai: the 07:00 that ends it is May 2 local = 23:00Z May 1.
    expect(end(night, 'Asia/Shanghai', '2024-05-01T17:00:00Z')).toBe('2024-05-01T23:00:00.000Z');
    // The same instant in New York is 13:00 on May 1: not quiet.
    expect(end(night, 'America/New_York', '2024-05-01T17:00:00Z')).toBeNull();
  });

  test('half-hour and 45-minute offsets (Asia/Kolkata +5:30, Asia/Kathmandu +5:45)', () => {
    expect(end(night, 'Asia/Kolkata', '2024-05-01T17:00:00Z')).toBe('2024-05-02T01:30:00.000Z');
    expect(end(night, 'Asia/Kathmandu', '2024-05-01T17:00:00Z')).toBe('2024-05-02T01:15:00.000Z');
    expect(end(night, 'UTC', '2024-05-01T23:00:00Z')).toBe('2024-05-02T07:00:00.000Z');
  });

  describe('America/New_York, spring forward (2024-03-10 02:00 EST → 03:00 EDT, at 07:00Z)', () => {
    test('a night across the change is an hour shorter: 07:00 EDT, not 07:00 EST', () => {
      // 23:00 EST on March 9
      expect(end(night, 'America/New_York', '2024-03-10T04:00:00Z')).toBe('2024-03-10T11:00:00.000Z');
      // 03:30 EDT, after the jump
      expect(end(night, 'America/New_York', '2024-03-10T07:30:00Z')).toBe('2024-03-10T11:00:00.000Z');
    });

    test('an end inside the skipped hour ends at the jump (03:00 EDT)', () => {
      const q = { start: '01:00', end: '02:30' };
      expect(end(q, 'America/New_York', '2024-03-10T06:45:00Z')).toBe('2024-03-10T07:00:00.000Z'); // 01:45 EST
      expect(end(q, 'America/New_York', '2024-03-10T06:59:59.999Z')).toBe('2024-03-10T07:00:00.000Z');
      expect(end(q, 'America/New_York', '2024-03-10T07:00:00Z')).toBeNull(); // 03:00 EDT
    });

    test('a start inside the skipped hour: quiet from the jump on', () => {
      const q = { start: '02:30', end: '06:00' };
      expect(end(q, 'America/New_York', '2024-03-10T06:59:00Z')).toBeNull(); // 01:59 EST
      expect(end(q, 'America/New_York', '2024-03-10T07:00:00Z')).toBe('2024-03-10T10:00:00.000Z'); // 03:00 EDT → 06:00 EDT
    });
  });

  describe('America/New_York, fall back (2024-11-03 02:00 EDT → 01:00 EST, at 06:00Z)', () => {
    test('a night across the change is an hour longer: 07:00 EST', () => {
      expect(end(night, 'America/New_York', '2024-11-03T02:00:00Z')).toBe('2024-11-03T12:00:00.000Z'); // 22:00 EDT Nov 2
      expect(end(night, 'America/New_York', '2024-11-03T06:30:00Z')).toBe('2024-11-03T12:00:00.000Z'); // 01:30 EST
    });

    test('an end in the repeated hour: the first 01:30 when quiet in the first pass, the second in the second', () => {
      const q = { start: '23:00', end: '01:30' };
      expect(end(q, 'America/New_York', '2024-11-03T04:00:00Z')).toBe('2024-11-03T05:30:00.000Z'); // 00:00 EDT → 01:30 EDT
      expect(end(q, 'America/New_York', '2024-11-03T05:40:00Z')).toBeNull(); // 01:40 EDT
      // The clock goes back to 01:00: quiet again until 01:30 EST.
      expect(end(q, 'America/New_York', '2024-11-03T06:10:00Z')).toBe('2024-11-03T06:30:00.000Z');
    });
  });

  test('Europe/London spring forward at 01:00 GMT → 02:00 BST', () => {
    expect(end({ start: '00:30', end: '01:30' }, 'Europe/London', '2024-03-31T00:45:00Z')).toBe('2024-03-31T01:00:00.000Z');
    expect(end(night, 'Europe/London', '2024-03-30T23:00:00Z')).toBe('2024-03-31T06:00:00.000Z');
  });

  describe('agrees with a minute-by-minute walk of the local clock', () => {
    const zones = ['Asia/Shanghai', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'America/Santiago', 'Pacific/Chatham', 'UTC'];
    const fmt = new Map(zones.map((z) => [z, new Intl.DateTimeFormat('en-GB', { timeZone: z, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })]));
    const localMinute = (t: number, tz: string) => {
      const [h, m] = fmt.get(tz)!.format(new Date(t)).split(':').map(Number);
      return h * 60 + m;
    };
    const isQuiet = (t: number, tz: string, s: number, e: number) => {
      const m = localMinute(t, tz);
      return s < e ? m >= s && m < e : m >= s || m < e;
    };
    // Deterministic pseudo-random cases, many of them around DST changes.
    let seed = 12345;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    const anchors = [
      '2024-03-10T07:00:00Z',
      '2024-11-03T06:00:00Z',
      '2024-03-31T01:00:00Z',
      '2024-10-27T01:00:00Z',
      '2024-04-06T15:00:00Z',
      '2024-09-08T04:00:00Z',
      '2024-09-28T14:00:00Z',
      '2024-06-15T12:00:00Z',
    ];

    test('for 1000 cases', () => {
      for (let i = 0; i < 1000; i++) {
        const tz = zones[rand(zones.length)];
        const s = rand(48) * 30;
        const e = rand(48) * 30;
        const now = Date.parse(anchors[rand(anchors.length)]) + (rand(48 * 60) - 24 * 60) * 60_000 + rand(60_000);
        const got = quietHoursEnd({ start: hhmm(s), end: hhmm(e) }, tz, new Date(now));
        const label = `${tz} ${hhmm(s)}-${hhmm(e)} at ${new Date(now).toISOString()}`;
        if (s === e || !isQuiet(now, tz, s, e)) {
          expect([label, got]).toEqual([label, null]);
          continue;
        }
        let t = Math.ceil(now / 60_000) * 60_000;
        while (isQuiet(t, tz, s, e)) t += 60_000;
        expect([label, got?.toISOString()]).toEqual([label, new Date(t).toISOString()]);
      }
    });
  });
});
