/** The user's own settings: time zone, quiet hours, trigger types they opted out of. */
import type { AppContext } from '../../context';
import { userSettingsBody, userSettingsView } from '../../settings/schemas';
import { loadUserSettings, saveUserSettings } from '../../settings/store';
import { defineRoute } from '../route';

const tag = 'settings';
const path = '/api/v1/me/settings';

export function settingsRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'get',
      path,
      tag,
      auth: 'user',
      summary: 'My settings (the defaults until I save some)',
      responses: { 200: { description: 'The settings', schema: userSettingsView } },
      handler: async ({ userId }) => ({ status: 200, body: await loadUserSettings(ctx, userId) }),
    }),
    defineRoute({
      method: 'put',
      path,
      tag,
      auth: 'user',
      body: userSettingsBody,
      summary: 'Replace my settings; a field left out (or quietHours: null) goes back to its default',
      responses: { 200: { description: 'The stored settings', schema: userSettingsView } },
      handler: async ({ userId, body }) => ({ status: 200, body: await saveUserSettings(ctx, userId, body) }),
    }),
  ];
}
