/**
 * Where my messages go: the configured channels (URL masked, last test), Send test, Remove, and the
 * form that sets one. The webhook URL is a secret: the API never gives it back, so it is pasted
 * again for every change, and cleared from the form once saved.
 */
import { Api, ApiError } from '../api';
import { h, replaceChildren } from '../dom';
import { busy, checkbox, field, FormErrors, onSubmit, select } from '../forms';
import { channelLabels, formatDateTime } from '../format';
import type { Channel, ChannelKind, ChannelTestResult } from '../types';

const urlShapes: Record<ChannelKind, string> = {
  feishu_bot: 'https://open.feishu.cn/open-apis/bot/v2/hook/<token>',
  feishu: 'https://www.feishu.cn/flow/api/trigger-webhook/<id>',
};

export function channelView(api: Api): { element: HTMLElement; load(): Promise<void> } {
  const list = h('div', { className: 'channel-list', 'aria-live': 'polite' });
  const formHost = h('div', { className: 'channel-form-host' });
  const element = h('section', { id: 'channel', className: 'card', 'aria-labelledby': 'channel-title' },
    h('h2', { id: 'channel-title' }, 'Where my messages go'),
    list,
    formHost,
  );
  let channels: Channel[] = [];

  const render = (editKind?: ChannelKind) => {
    replaceChildren(list, ...(channels.length ? channels.map(channelCard) : [h('p', { className: 'empty' }, 'No channel yet: messages to you are skipped until you set one below.')]));
    const kind = editKind ?? channels[0]?.channel ?? 'feishu_bot';
    replaceChildren(formHost, channelForm(kind));
  };

  const load = async () => {
    channels = await api.channels();
    render();
  };

  function channelCard(c: Channel): HTMLElement {
    const result = h('p', { className: 'test-result', role: 'status', hidden: true });
    const showTest = (ok: boolean, text: string) => {
      result.textContent = text;
      result.className = `test-result ${ok ? 'ok' : 'failed'}`;
      result.hidden = false;
    };
    if (c.lastTest) {
      showTest(c.lastTest.status === 'ok', c.lastTest.status === 'ok'
        ? `Last test delivered (${formatDateTime(c.lastTest.at)})`
        : `Last test failed (${formatDateTime(c.lastTest.at)}): ${c.lastTest.errorCode ?? ''} ${c.lastTest.error ?? ''}`.trim());
    }
    const testButton = h('button', { type: 'button', className: 'primary', 'data-action': 'test' }, 'Send test');
    testButton.addEventListener('click', () => busy(testButton, async () => {
      result.hidden = false;
      result.className = 'test-result';
      result.textContent = 'Sending a test message…';
      try {
        const r: ChannelTestResult = await api.testChannel(c.channel);
        showTest(r.ok, r.ok
          ? 'Test message delivered: look in your Feishu chat.'
          : `Test message refused: ${r.code}${r.httpStatus ? ` (HTTP ${r.httpStatus})` : ''}${r.detail ? ` — ${r.detail}` : ''}`);
      } catch (err) {
        showTest(false, err instanceof ApiError ? `${err.message} (${err.code})` : String(err));
      }
    }));
    const editButton = h('button', { type: 'button', 'data-action': 'edit' }, 'Change');
    editButton.addEventListener('click', () => {
      render(c.channel);
      formHost.querySelector<HTMLInputElement>('input[name="webhookUrl"]')?.focus();
    });
    const removeButton = h('button', { type: 'button', className: 'danger', 'data-action': 'remove' }, 'Remove');
    removeButton.addEventListener('click', () => busy(removeButton, async () => {
      if (!confirm(`Remove the ${channelLabels[c.channel]} channel and its secrets?`)) return;
      try {
        await api.deleteChannel(c.channel);
        channels = channels.filter((x) => x.channel !== c.channel);
        render();
      } catch (err) {
        showTest(false, err instanceof ApiError ? err.message : String(err));
      }
    }));
    const facts: Array<[string, string]> = c.channel === 'feishu_bot'
      ? [['Format', c.format], ['Signing secret', c.hasSigningSecret ? 'stored' : 'none'], ['Keyword', c.keyword ?? 'none']]
      : [['Authorization', c.authType === 'bearer' ? `bearer token ${c.hasBearerToken ? 'stored' : 'missing'}` : 'none']];
    return h('article', { className: 'channel', 'data-channel': c.channel },
      h('header', {},
        h('h3', {}, channelLabels[c.channel] ?? c.channel),
        h('span', { className: `badge ${c.enabled ? 'badge-sent' : 'badge-skipped'}` }, c.enabled ? 'enabled' : 'disabled')),
      h('p', { className: 'masked-url' }, h('code', {}, c.webhookUrl)),
      h('dl', { className: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('div', { className: 'actions' }, testButton, editButton, removeButton),
      result,
    );
  }

  function channelForm(kind: ChannelKind): HTMLElement {
    const stored = channels.find((c) => c.channel === kind);
    const errors = new FormErrors();
    const kindSelect = select(Object.entries(channelLabels) as Array<[string, string]>, kind, { name: 'channel' });
    kindSelect.addEventListener('change', () => {
      replaceChildren(formHost, channelForm(kindSelect.value as ChannelKind));
      formHost.querySelector<HTMLSelectElement>('select[name="channel"]')?.focus();
    });
    const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: stored?.enabled ?? true });
    const url = h('input', { type: 'text', name: 'webhookUrl', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: urlShapes[kind] });
    const urlHint = stored
      ? `Saved: ${stored.webhookUrl}. The URL is stored encrypted and never shown again: paste it again to save a change.`
      : `From the bot's settings in Feishu, like ${urlShapes[kind]}.`;
    const fields: HTMLElement[] = [field('Kind', kindSelect, errors, 'channel'), checkbox('Enabled', enabled, errors, 'enabled'), field('Webhook URL', url, errors, 'webhookUrl', urlHint)];

    let body: () => Record<string, unknown>;
    if (kind === 'feishu_bot') {
      const bot = stored?.channel === 'feishu_bot' ? stored : undefined;
      const secret = h('input', { type: 'password', name: 'signingSecret', autocomplete: 'new-password', placeholder: bot?.hasSigningSecret ? 'stored; leave empty to keep it' : 'the bot\'s signature secret, if it has one' });
      const removeSecret = h('input', { type: 'checkbox', name: 'removeSigningSecret' });
      const format = select([['card', 'Card (recommended)'], ['post', 'Rich text'], ['text', 'Plain text']], bot?.format ?? 'card', { name: 'format' });
      const keyword = h('input', { type: 'text', name: 'keyword', autocomplete: 'off', value: bot?.keyword ?? '' });
      fields.push(field('Signing secret', secret, errors, 'signingSecret', 'Security settings → Signature verification, in the bot\'s settings.'));
      if (bot?.hasSigningSecret) fields.push(checkbox('Remove the stored signing secret', removeSecret));
      fields.push(field('Format', format, errors, 'format'), field('Keyword', keyword, errors, 'keyword', 'Only if the bot requires a custom keyword; it is put in every title.'));
      body = () => {
        const b: Record<string, unknown> = { enabled: enabled.checked, webhookUrl: url.value.trim(), format: format.value, keyword: keyword.value.trim() || null };
        if (secret.value) b.signingSecret = secret.value;
        else if (removeSecret.checked) b.signingSecret = null;
        return b;
      };
    } else {
      const flow = stored?.channel === 'feishu' ? stored : undefined;
      const authType = select([['none', 'None'], ['bearer', 'Bearer token']], flow?.authType ?? 'none', { name: 'authType' });
      const bearer = h('input', { type: 'password', name: 'bearerToken', autocomplete: 'new-password', placeholder: flow?.hasBearerToken ? 'stored; leave empty to keep it' : '' });
      const bearerField = field('Bearer token', bearer, errors, 'bearerToken');
      const sync = () => { bearerField.hidden = authType.value !== 'bearer'; };
      authType.addEventListener('change', sync);
      sync();
      fields.push(field('Authorization', authType, errors, 'authType'), bearerField);
      body = () => {
        const b: Record<string, unknown> = { enabled: enabled.checked, webhookUrl: url.value.trim(), authType: authType.value };
        if (authType.value === 'bearer' && bearer.value) b.bearerToken = bearer.value;
        return b;
      };
    }

    const saved = h('p', { className: 'saved', role: 'status' });
    const save = h('button', { type: 'submit', className: 'primary' }, 'Save channel');
    const form = h('form', { className: 'channel-form', novalidate: true, 'aria-labelledby': 'channel-form-title' },
      h('h3', { id: 'channel-form-title' }, stored ? `Change the ${channelLabels[kind]}` : 'Set a channel'),
      ...fields, errors.general, h('div', { className: 'actions' }, save), saved);
    onSubmit(form, save, saved, errors, async () => {
      const channel = await api.saveChannel(kind, body());
      channels = [channel, ...channels.filter((c) => c.channel !== kind)].sort((a, b) => (a.channel === 'feishu_bot' ? -1 : b.channel === 'feishu_bot' ? 1 : 0));
      render(kind); // a fresh form: the URL and secrets leave the page
      const note = formHost.querySelector('.saved');
      if (note) note.textContent = `Saved. The URL is now shown masked: ${channel.webhookUrl}`;
    });
    return form;
  }

  return { element, load };
}
