/** Emitting an event (stub: filled in by the events work). */
import type { AppContext } from '../context';
import type { EventType } from './types';

export interface EmitInput {
  type: EventType;
  /** What makes this event this one (e.g. the preview id for preview.confirmed): emitting twice with one key is one event. */
  key: string;
  userId?: string;
  data: Record<string, unknown>;
  at?: Date;
}

export async function emitEvent(_ctx: Pick<AppContext, 'models' | 'queues' | 'config' | 'logger'>, _event: EmitInput): Promise<void> {
  return undefined;
}
