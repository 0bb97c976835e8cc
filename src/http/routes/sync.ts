/** The host product's data by its own ids (stub: filled in by the sync work). */
import type { AppContext } from '../../context';
import type { RouteDef } from '../route';

export function syncRoutes(_ctx: AppContext): RouteDef[] {
  return [];
}
