/** Webhook endpoints and the events API (stub: filled in by the events work). */
import type { AppContext } from '../../context';
import type { RouteDef } from '../route';

export function webhookEndpointRoutes(_ctx: AppContext): RouteDef[] {
  return [];
}
