/** What a press of a card's button does (stub: filled in by the card actions work). */
import type { AppContext } from '../context';

/** A card.action.trigger callback, verified and decrypted. */
export interface CardActionEvent {
  eventId: string;
  operator: { openId?: string; unionId?: string; userId?: string };
  /** The button's value, as dueflow put it on the card: it names the action and carries no authority. */
  value: unknown;
  openMessageId: string;
  openChatId?: string;
}

/** Feishu's callback answer: a toast, and the card redrawn in its new state. */
export interface CardActionAnswer {
  toast: { type: 'success' | 'info' | 'warning' | 'error'; content: string };
  card?: { type: 'raw'; data: object };
}

export type CardActionHandler = (event: CardActionEvent) => Promise<CardActionAnswer>;

export function createCardActionHandler(_ctx: AppContext): CardActionHandler {
  return async () => ({ toast: { type: 'error', content: 'This button is not available.' } });
}
