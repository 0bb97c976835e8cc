/**
 * Cards follow the truth: when what a sent card asks about changes elsewhere (a suggestion
 * answered on /app, an anomaly acknowledged there, an escalation step), each card of it is
 * redrawn in place (PATCH), as a job with retries. One job per card (its id is the record's):
 * a change while one waits is drawn by it, since it reads the state when it runs; a change
 * while it runs is caught by its last look before it ends.
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import { renderCard } from './render';
import { loadCardView } from './load';
import type { AppCallOutcome } from '../feishuApp/types';
import { queueNames } from '../../queues/names';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'feishuApp' | 'logger'>;

export const cardUpdateJobId = (recordId: string) => `card-${recordId}`;

/** What a card is about: one preview's cards, one anomaly's, or one card. */
export type CardsOf = { previewId: string } | { triggerId: string } | { recordId: string };

/** Enqueues a redraw of every sent app card of `of` (but `except`, redrawn by a callback's answer already). */
export async function refreshCards(ctx: Pick<AppContext, 'models' | 'queues' | 'feishuApp'>, of: CardsOf, except?: string): Promise<number> {
  if (!ctx.feishuApp) return 0;
  const filter = 'recordId' in of ? { _id: of.recordId } : of;
  const records = await ctx.models.notificationRecords.find({ ...filter, channel: 'feishu_app', providerMessageId: { $exists: true } }, { _id: 1 }).lean();
  const ids = records.map((r) => String(r._id)).filter((id) => id !== except);
  if (!ids.length) return 0;
  await ctx.queues[queueNames.cardUpdates].addBulk(
    ids.map((recordId) => ({
      name: 'card.redraw',
      data: { v: 1, recordId },
      opts: {
        jobId: cardUpdateJobId(recordId),
        attempts: 6,
        backoff: { type: 'exponential', delay: 2000 },
        removeOnComplete: true,
        removeOnFail: { age: 7 * 86_400 },
      },
    })),
  );
  return ids.length;
}

export type CardUpdateStep =
  | { kind: 'done'; status: 'updated' | 'unchanged' | 'not_a_card' | 'refused'; code?: string }
  | { kind: 'delay'; ms: number; code: string }
  | { kind: 'retry'; code: string; detail: string };

/** One run of a redraw job: draws the card as it is now and PATCHes it; looks once more before it ends. */
export async function redrawCard(ctx: Ctx, recordId: string): Promise<CardUpdateStep> {
  const api = ctx.feishuApp;
  if (!api) return { kind: 'done', status: 'not_a_card' };
  let drawn = '';
  for (let look = 0; look < 3; look++) {
    const record = await ctx.models.notificationRecords
      .findById(recordId, { userId: 1, message: 1, replyKind: 1, severity: 1, reply: 1, previewId: 1, triggerId: 1, providerMessageId: 1, channel: 1 })
      .lean<NotificationRecord>();
    if (!record?.providerMessageId || record.channel !== 'feishu_app') return { kind: 'done', status: 'not_a_card' };
    const card = renderCard(await loadCardView(ctx, record));
    const json = JSON.stringify(card);
    if (json === drawn) return { kind: 'done', status: look === 0 ? 'unchanged' : 'updated' };
    const outcome: AppCallOutcome = await api.updateCard({ messageId: record.providerMessageId, card });
    if (outcome.kind !== 'sent') return failed(ctx, recordId, outcome);
    drawn = json;
  }
  return { kind: 'done', status: 'updated' };
}

function failed(ctx: Ctx, recordId: string, outcome: AppCallOutcome): CardUpdateStep {
  if (outcome.rateLimited) return { kind: 'delay', ms: outcome.retryAfterMs ?? 1500, code: outcome.code };
  if (outcome.kind === 'temporary') return { kind: 'retry', code: outcome.code, detail: outcome.detail ?? outcome.code };
  // Past 14 days (230031) or refused for good: the card stays as it was.
  ctx.logger.info({ recordId, code: outcome.code, detail: outcome.detail }, 'card not redrawn: Feishu refused the update');
  return { kind: 'done', status: 'refused', code: outcome.code };
}
