/** Which card a record's message is drawn as, before anyone answered it. Pure. */
import type { CardState } from './render';

export interface CardRecord {
  replyKind?: string | null;
  severity?: string | null;
}

export function firstCardState(record: CardRecord): CardState {
  switch (record.replyKind) {
    case 'preview':
      return { kind: 'preview', status: 'ready' };
    case 'reminder':
      return { kind: 'reminder', status: 'open' };
    case 'anomaly':
      return { kind: 'anomaly', status: 'open', severity: record.severity ?? undefined };
    default:
      return { kind: 'message' };
  }
}
