/**
 * Where my messages go: each configured channel (group bot, Flow webhook, the host product's app
 * bot; a user may keep several), its last test, Send test, Remove, and the form that adds or
 * changes one. A webhook URL is a secret: the API never gives it back, so it is pasted again for
 * every change, and cleared from the form once saved.
 */
import type { Api } from '../api';
import { describeError } from '../api';
import { h, replaceChildren } from '../dom';
import { busy, checkbox, field, FormErrors, onSubmit, select } from '../forms';
import { channelLabels, formatDateTime, receiveIdTypeLabels } from '../format';
import { channelKinds, receiveIdTypes, type Channel, type ChannelKind, type ChannelTestResult, type ReceiveIdType } from '../types';

const urlShapes: Record<Exclude<ChannelKind, 'feishu_app'>, string> = {
  feishu_bot: 'https://open.feishu.cn/open-apis/bot/v2/hook/<token>',
  feishu: 'https://www.feishu.cn/flow/api/trigger-webhook/<id>',
};

const receiveIdPlaceholders: Record<ReceiveIdType, string> = {
  open_id: 'ou_…',
  union_id: 'on_…',
  user_id: "your user ID in the company's Feishu",
  email: 'you@company.com',
};

/** The kinds in the order the form offers them (channelLabels' order). */
const formKinds = Object.keys(channelLabels) as ChannelKind[];

export interface Routing {
  primaryChannel: ChannelKind | null;
  fallbackChannel: ChannelKind | null;
}

/**
 * Where a message goes, as the server decides it (chooseChannelKind in src/channels/store.ts): the
 * primary while it is enabled, else the first enabled one in the server's order.
 */
function deliveryKind(channels: Channel[], primary: ChannelKind | null): ChannelKind | null {
  if (primary && channels.some((c) => c.channel === primary && c.enabled)) return primary;
  const ranked = [...channels].sort((a, b) => channelKinds.indexOf(a.channel) - channelKinds.indexOf(b.channel));
  return ranked.find((c) => c.enabled)?.channel ?? null;
}

export function channelView(
  api: Api,
  onChannels: (kinds: ChannelKind[]) => void,
): {
  element: HTMLElement;
  load(): Promise<void>;
  /** The settings' primary and fallback channels, shown on the cards. */
  setRouting(routing: Routing): void;
} {
  const list = h('div', { className: 'channel-list', 'aria-live': 'polite' });
  const formHost = h('div', { className: 'channel-form-host' });
  const element = h(
    'section',
    { id: 'channel', className: 'card', 'aria-labelledby': 'channel-title' },
    h('h2', { id: 'channel-title' }, 'Where my messages go'),
    list,
    formHost,
  );
  let channels: Channel[] = [];
  let routing: Routing = { primaryChannel: null, fallbackChannel: null };

  const renderList = () => {
    const target = deliveryKind(channels, routing.primaryChannel);
    replaceChildren(
      list,
      ...(channels.length
        ? channels.map((c) => channelCard(c, target))
        : [h('p', { className: 'empty' }, 'No channel yet: messages to you are skipped until you set one below.')]),
    );
  };

  /** The form shows `editKind`, else the first kind not set up yet (adding one keeps the others). */
  const render = (editKind?: ChannelKind) => {
    renderList();
    const kind = editKind ?? formKinds.find((k) => !channels.some((c) => c.channel === k)) ?? channels[0]?.channel ?? 'feishu_bot';
    replaceChildren(formHost, channelForm(kind));
  };

  const changed = () => onChannels(channels.map((c) => c.channel));

  const load = async () => {
    channels = await api.channels();
    render();
    changed();
  };

  function channelCard(c: Channel, target: ChannelKind | null): HTMLElement {
    const result = h('p', { className: 'test-result', role: 'status', hidden: true });
    const showTest = (ok: boolean, text: string) => {
      result.textContent = text;
      result.className = `test-result ${ok ? 'ok' : 'failed'}`;
      result.hidden = false;
    };
    if (c.lastTest) {
      showTest(
        c.lastTest.status === 'ok',
        c.lastTest.status === 'ok'
          ? `Last test delivered (${formatDateTime(c.lastTest.at)})`
          : `Last test failed (${formatDateTime(c.lastTest.at)}): ${c.lastTest.errorCode ?? ''} ${c.lastTest.error ?? ''}`.trim(),
      );
    }
    const testButton = h('button', { type: 'button', className: 'primary', 'data-action': 'test' }, 'Send test');
    testButton.addEventListener('click', () =>
      busy(testButton, async () => {
        result.hidden = false;
        result.className = 'test-result';
        result.textContent = 'Sending a test message…';
        try {
          const r: ChannelTestResult = await api.testChannel(c.channel);
          showTest(
            r.ok,
            r.ok
              ? c.channel === 'feishu_app'
                ? "Test message delivered: look for a direct message from the app's bot in Feishu."
                : 'Test message delivered: look in your Feishu chat.'
              : `Test message refused: ${r.code}${r.httpStatus ? ` (HTTP ${r.httpStatus})` : ''}${r.detail ? ` — ${r.detail}` : ''}`,
          );
        } catch (err) {
          showTest(false, describeError(err));
        }
      }),
    );
    const editButton = h('button', { type: 'button', 'data-action': 'edit' }, 'Change');
    editButton.addEventListener('click', () => {
      render(c.channel);
      formHost.querySelector<HTMLInputElement>('input[name="webhookUrl"], input[name="receiveId"]')?.focus();
    });
    const removeButton = h('button', { type: 'button', className: 'danger', 'data-action': 'remove' }, 'Remove');
    removeButton.addEventListener('click', () =>
      busy(removeButton, async () => {
        if (!confirm(`Remove the ${channelLabels[c.channel]} channel${c.channel === 'feishu_app' ? '' : ' and its secrets'}?`)) return;
        try {
          await api.deleteChannel(c.channel);
          channels = channels.filter((x) => x.channel !== c.channel);
          render();
          changed();
        } catch (err) {
          showTest(false, describeError(err));
        }
      }),
    );
    let facts: Array<[string, string]>;
    let address: HTMLElement;
    if (c.channel === 'feishu_app') {
      facts = [['Sent to', receiveIdTypeLabels[c.receiveIdType] ?? c.receiveIdType]];
      address = h('p', { className: 'receive-id' }, h('code', {}, c.receiveId));
    } else {
      facts =
        c.channel === 'feishu_bot'
          ? [
              ['Format', c.format],
              ['Signing secret', c.hasSigningSecret ? 'stored' : 'none'],
              ['Keyword', c.keyword ?? 'none'],
            ]
          : [['Authorization', c.authType === 'bearer' ? `bearer token ${c.hasBearerToken ? 'stored' : 'missing'}` : 'none']];
      address = h('p', { className: 'masked-url' }, h('code', {}, c.webhookUrl));
    }
    const isFallback = routing.fallbackChannel === c.channel;
    return h(
      'article',
      { className: 'channel', 'data-channel': c.channel },
      h(
        'header',
        {},
        h('h3', {}, channelLabels[c.channel] ?? c.channel),
        h(
          'span',
          { className: 'badges' },
          target === c.channel
            ? h(
                'span',
                { className: 'badge badge-route', 'data-route': 'primary' },
                routing.primaryChannel === c.channel ? 'messages go here (primary)' : 'messages go here',
              )
            : null,
          isFallback ? h('span', { className: 'badge badge-route', 'data-route': 'fallback' }, 'fallback') : null,
          h('span', { className: `badge ${c.enabled ? 'badge-sent' : 'badge-skipped'}` }, c.enabled ? 'enabled' : 'disabled'),
        ),
      ),
      address,
      h('dl', { className: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('div', { className: 'actions' }, testButton, editButton, removeButton),
      result,
    );
  }

  function channelForm(kind: ChannelKind): HTMLElement {
    const stored = channels.find((c) => c.channel === kind);
    const errors = new FormErrors();
    // A kind already set up says so: choosing it changes that channel, the others stay.
    const kindOptions = formKinds.map((k): [string, string] => [
      k,
      channels.some((c) => c.channel === k) ? `${channelLabels[k]} (set up: change it)` : channelLabels[k],
    ]);
    const kindSelect = select(kindOptions, kind, { name: 'channel' });
    kindSelect.addEventListener('change', () => {
      replaceChildren(formHost, channelForm(kindSelect.value as ChannelKind));
      formHost.querySelector<HTMLSelectElement>('select[name="channel"]')?.focus();
    });
    const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: stored?.enabled ?? true });
    const fields: HTMLElement[] = [field('Kind', kindSelect, errors, 'channel'), checkbox('Enabled', enabled, errors, 'enabled')];

    let body: () => Record<string, unknown>;
    let savedNote: (c: Channel) => string;
    if (kind === 'feishu_app') {
      const app = stored?.channel === 'feishu_app' ? stored : undefined;
      const idType = select(
        receiveIdTypes.map((t): [string, string] => [t, receiveIdTypeLabels[t]]),
        app?.receiveIdType ?? 'open_id',
        { name: 'receiveIdType' },
      );
      // An email comes back masked: it cannot be sent back as it is shown.
      const receiveId = h('input', {
        type: 'text',
        name: 'receiveId',
        autocomplete: 'off',
        spellcheck: 'false',
        value: app && app.receiveIdType !== 'email' ? app.receiveId : '',
      });
      const syncPlaceholder = () => {
        receiveId.placeholder = receiveIdPlaceholders[idType.value as ReceiveIdType] ?? '';
      };
      idType.addEventListener('change', syncPlaceholder);
      syncPlaceholder();
      const idHint =
        app?.receiveIdType === 'email'
          ? `Saved: ${app.receiveId}. The address is shown masked: type it again to save a change.`
          : "Who you are in your company's Feishu or Lark: messages come as direct messages from its app's bot. Your Feishu administrator can tell you your ID.";
      fields.push(field('Receive ID type', idType, errors, 'receiveIdType'), field('Receive ID', receiveId, errors, 'receiveId', idHint));
      body = () => ({ enabled: enabled.checked, receiveIdType: idType.value, receiveId: receiveId.value.trim() });
      savedNote = (c) =>
        c.channel === 'feishu_app' ? `Saved: direct messages to ${c.receiveId} (${receiveIdTypeLabels[c.receiveIdType] ?? c.receiveIdType}).` : 'Saved.';
    } else {
      const url = h('input', { type: 'text', name: 'webhookUrl', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: urlShapes[kind] });
      const urlHint =
        stored && 'webhookUrl' in stored
          ? `Saved: ${stored.webhookUrl}. The URL is stored encrypted and never shown again: paste it again to save a change.`
          : `From the bot's settings in Feishu, like ${urlShapes[kind]}.`;
      fields.push(field('Webhook URL', url, errors, 'webhookUrl', urlHint));
      savedNote = (c) => ('webhookUrl' in c ? `Saved. The URL is now shown masked: ${c.webhookUrl}` : 'Saved.');
      if (kind === 'feishu_bot') {
        const bot = stored?.channel === 'feishu_bot' ? stored : undefined;
        const secret = h('input', {
          type: 'password',
          name: 'signingSecret',
          autocomplete: 'new-password',
          placeholder: bot?.hasSigningSecret ? 'stored; leave empty to keep it' : "the bot's signature secret, if it has one",
        });
        const removeSecret = h('input', { type: 'checkbox', name: 'removeSigningSecret' });
        const format = select(
          [
            ['card', 'Card (recommended)'],
            ['post', 'Rich text'],
            ['text', 'Plain text'],
          ],
          bot?.format ?? 'card',
          { name: 'format' },
        );
        const keyword = h('input', { type: 'text', name: 'keyword', autocomplete: 'off', value: bot?.keyword ?? '' });
        fields.push(field('Signing secret', secret, errors, 'signingSecret', "Security settings → Signature verification, in the bot's settings."));
        if (bot?.hasSigningSecret) fields.push(checkbox('Remove the stored signing secret', removeSecret));
        fields.push(
          field('Format', format, errors, 'format'),
          field('Keyword', keyword, errors, 'keyword', 'Only if the bot requires a custom keyword; it is put in every title.'),
        );
        body = () => {
          const b: Record<string, unknown> = {
            enabled: enabled.checked,
            webhookUrl: url.value.trim(),
            format: format.value,
            keyword: keyword.value.trim() || null,
          };
          if (secret.value) b.signingSecret = secret.value;
          else if (removeSecret.checked) b.signingSecret = null;
          return b;
        };
      } else {
        const flow = stored?.channel === 'feishu' ? stored : undefined;
        const authType = select(
          [
            ['none', 'None'],
            ['bearer', 'Bearer token'],
          ],
          flow?.authType ?? 'none',
          { name: 'authType' },
        );
        const bearer = h('input', {
          type: 'password',
          name: 'bearerToken',
          autocomplete: 'new-password',
          placeholder: flow?.hasBearerToken ? 'stored; leave empty to keep it' : '',
        });
        const bearerField = field('Bearer token', bearer, errors, 'bearerToken');
        const sync = () => {
          bearerField.hidden = authType.value !== 'bearer';
        };
        authType.addEventListener('change', sync);
        sync();
        fields.push(field('Authorization', authType, errors, 'authType'), bearerField);
        body = () => {
          const b: Record<string, unknown> = { enabled: enabled.checked, webhookUrl: url.value.trim(), authType: authType.value };
          if (authType.value === 'bearer' && bearer.value) b.bearerToken = bearer.value;
          return b;
        };
      }
    }

    const saved = h('p', { className: 'saved', role: 'status' });
    const save = h('button', { type: 'submit', className: 'primary' }, 'Save channel');
    const title = stored ? `Change the ${channelLabels[kind]}` : channels.length ? 'Add another channel' : 'Set a channel';
    const form = h(
      'form',
      { className: 'channel-form', novalidate: true, 'aria-labelledby': 'channel-form-title', 'data-kind': kind },
      h('h3', { id: 'channel-form-title' }, title),
      channels.length > 0 && !stored
        ? h('p', { className: 'hint' }, 'Your other channels stay as they are; choose which one is used under "When and how".')
        : null,
      ...fields,
      errors.general,
      h('div', { className: 'actions' }, save),
      saved,
    );
    onSubmit(form, save, saved, errors, async () => {
      const channel = await api.saveChannel(kind, body());
      channels = [channel, ...channels.filter((c) => c.channel !== kind)].sort((a, b) => channelKinds.indexOf(a.channel) - channelKinds.indexOf(b.channel));
      render(kind); // a fresh form: the URL and secrets leave the page
      changed();
      const note = formHost.querySelector('.saved');
      if (note) note.textContent = savedNote(channel);
    });
    return form;
  }

  return {
    element,
    load,
    setRouting: (r) => {
      routing = r;
      renderList(); // the cards only: an edit in progress in the form stays
    },
  };
}
