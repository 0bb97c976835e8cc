/**
 * Quiet hours, time zone, language, working hours, which channel is used first and which one is the
 * fallback (with the escalation delay of critical alerts), and the trigger types I do not want to hear about.
 */
import type { Api } from '../api';
import { h, replaceChildren } from '../dom';
import { checkbox, field, FormErrors, onSubmit, select } from '../forms';
import { channelLabels, prefs, triggerTypeLabels } from '../format';
import type { ChannelKind, Settings } from '../types';

function timeZoneNames(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    return ['UTC', ...(intl.supportedValuesOf?.('timeZone') ?? [])];
  } catch {
    return ['UTC'];
  }
}

export function settingsView(
  api: Api,
  onSaved: (s: Settings) => void,
): {
  element: HTMLElement;
  load(): Promise<Settings>;
  /** Trigger types seen in my records, so they can be opted out of too. */
  addKnownTypes(types: string[]): void;
  /** The channels set up, so that choosing one that is not says so. */
  setChannels(kinds: ChannelKind[]): void;
} {
  const host = h('div');
  const element = h(
    'section',
    { id: 'settings', className: 'card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, 'When and how'),
    host,
  );
  let current: Settings | null = null;
  const extraTypes = new Set<string>();
  let configured: ChannelKind[] | null = null;
  /** Re-checks the channel choices against the channels set up (set by render). */
  let syncChannelHints = () => {};

  const render = (s: Settings) => {
    const errors = new FormErrors();
    const zones = h('datalist', { id: 'time-zones' }, ...timeZoneNames().map((z) => h('option', { value: z })));
    const timeZone = h('input', { type: 'text', name: 'timeZone', list: 'time-zones', autocomplete: 'off', spellcheck: 'false', value: s.timeZone });
    const language = select(
      [
        ['zh-CN', '中文 (zh-CN)'],
        ['en', 'English (en)'],
      ],
      s.language,
      { name: 'language' },
    );

    const quietOn = h('input', { type: 'checkbox', name: 'quietHoursOn', checked: s.quietHours !== null });
    const quietStart = h('input', { type: 'time', name: 'quietHours.start', value: s.quietHours?.start ?? '22:00' });
    const quietEnd = h('input', { type: 'time', name: 'quietHours.end', value: s.quietHours?.end ?? '07:00' });
    const quietFields = h(
      'div',
      { className: 'pair' },
      field('From', quietStart, errors, 'quietHours.start'),
      field('Until', quietEnd, errors, 'quietHours.end'),
    );
    const syncQuiet = () => {
      quietFields.hidden = !quietOn.checked;
    };
    quietOn.addEventListener('change', syncQuiet);
    syncQuiet();

    const kindOptions = Object.entries(channelLabels) as Array<[string, string]>;
    const primary = select([['', 'Automatic (the one that is enabled)'], ...kindOptions], s.primaryChannel ?? '', { name: 'primaryChannel' });
    const fallback = select([['', 'None'], ...kindOptions], s.fallbackChannel ?? '', { name: 'fallbackChannel' });
    const afterMinutes = h('input', {
      type: 'number',
      name: 'escalation.afterMinutes',
      min: 0.1,
      max: 1440,
      step: 0.1,
      inputmode: 'decimal',
      value: String(s.escalation?.afterMinutes ?? 15),
    });
    // A warning, not an error: the channel may be set up next, and the API accepts either order.
    const primaryNote = h('p', { className: 'hint channel-note', hidden: true });
    const fallbackNote = h('p', { className: 'hint channel-note', hidden: true });
    syncChannelHints = () => {
      for (const [input, note] of [
        [primary, primaryNote],
        [fallback, fallbackNote],
      ] as const) {
        const kind = input.value as ChannelKind | '';
        const missing = kind !== '' && configured !== null && !configured.includes(kind);
        note.textContent = missing ? `You have no ${channelLabels[kind]} yet: set it up under "Where my messages go".` : '';
        note.hidden = !missing;
      }
    };
    primary.addEventListener('change', syncChannelHints);
    fallback.addEventListener('change', syncChannelHints);
    syncChannelHints();
    const primaryField = field(
      'Send my messages to',
      primary,
      errors,
      'primaryChannel',
      'Automatic: the app if you set it up, else the group bot, else the Flow webhook (the first that is enabled).',
    );
    primaryField.appendChild(primaryNote);
    const fallbackField = field(
      'Fallback for critical alerts',
      fallback,
      errors,
      'fallbackChannel',
      'Where a critical alert also goes when you have not acknowledged it in time.',
    );
    fallbackField.appendChild(fallbackNote);

    const workStart = h('input', { type: 'time', name: 'workingHours.start', value: s.workingHours.start });
    const workEnd = h('input', { type: 'time', name: 'workingHours.end', value: s.workingHours.end });

    const types = [...new Set([...Object.keys(triggerTypeLabels), ...s.optOutTriggerTypes, ...extraTypes])];
    const optOut = types.map((type) => h('input', { type: 'checkbox', name: 'optOutTriggerTypes', value: type, checked: s.optOutTriggerTypes.includes(type) }));
    const optOutSet = h(
      'fieldset',
      { className: 'opt-out' },
      h('legend', {}, 'Do not notify me about'),
      ...optOut.map((input, i) => checkbox(triggerTypeLabels[types[i]] ?? types[i], input)),
    );
    const optOutError = errors.slot('optOutTriggerTypes', optOutSet);
    optOutSet.appendChild(optOutError);

    const saved = h('p', { className: 'saved', role: 'status' });
    const save = h('button', { type: 'submit', className: 'primary' }, 'Save settings');
    const form = h(
      'form',
      { className: 'settings-form', novalidate: true },
      field('Time zone', timeZone, errors, 'timeZone', 'Quiet hours and times on this page are read on this clock (IANA name, like Asia/Shanghai).'),
      zones,
      field('Language of messages', language, errors, 'language'),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Quiet hours'),
        checkbox('Hold messages during quiet hours', quietOn, errors, 'quietHours'),
        quietFields,
        h('p', { className: 'hint' }, 'Messages that arrive then wait until the end (they may cross midnight).'),
      ),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Working hours'),
        h('div', { className: 'pair' }, field('From', workStart, errors, 'workingHours.start'), field('Until', workEnd, errors, 'workingHours.end')),
        h('p', { className: 'hint' }, 'Free slots are suggested within these hours.'),
      ),
      h(
        'fieldset',
        { className: 'routing' },
        h('legend', {}, 'Channels and escalation'),
        primaryField,
        fallbackField,
        field(
          'Escalate critical alerts after (minutes)',
          afterMinutes,
          errors,
          'escalation.afterMinutes',
          'A critical alert you have not acknowledged this long after it was sent buzzes you in Feishu (app channel); after as long again it goes to the fallback channel.',
        ),
      ),
      optOutSet,
      errors.general,
      h('div', { className: 'actions' }, save),
      saved,
    );
    form.addEventListener('input', () => {
      form.dataset.touched = 'true';
    });
    onSubmit(form, save, saved, errors, async () => {
      // The PUT replaces all settings: ones this form does not show are sent back as they were.
      const stored = await api.saveSettings({
        ...s,
        timeZone: timeZone.value.trim(),
        language: language.value,
        quietHours: quietOn.checked ? { start: quietStart.value, end: quietEnd.value } : null,
        workingHours: { start: workStart.value, end: workEnd.value },
        optOutTriggerTypes: optOut.filter((i) => i.checked).map((i) => i.value),
        primaryChannel: primary.value || null,
        fallbackChannel: fallback.value || null,
        // Empty (or not a number) goes as null: the API names the field.
        escalation: { afterMinutes: afterMinutes.value === '' ? null : Number(afterMinutes.value) },
      });
      current = stored;
      onSaved(stored);
      render(stored);
      const note = host.querySelector('.saved');
      if (note) note.textContent = 'Settings saved.';
    });
    replaceChildren(host, form);
  };

  return {
    element,
    load: async () => {
      const s = await api.settings();
      current = s;
      prefs.timeZone = s.timeZone;
      render(s);
      return s;
    },
    addKnownTypes: (list) => {
      const before = extraTypes.size;
      for (const t of list) if (/^[a-z][a-z0-9_]{0,63}$/.test(t) && !(t in triggerTypeLabels)) extraTypes.add(t);
      // Re-rendering would drop unsaved edits; only do it while the form shows nothing new.
      if (current && extraTypes.size !== before && !host.querySelector('[aria-invalid]')) {
        const form = host.querySelector('form');
        if (form && !form.dataset.touched) render(current);
      }
    },
    setChannels: (kinds) => {
      configured = kinds;
      syncChannelHints();
    },
  };
}
