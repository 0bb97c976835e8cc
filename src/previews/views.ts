/** The preview as the API shows it. A ready preview past its expiry shows as expired. */
import { z } from 'zod';
import { candidateKinds, previewStatuses, type PreviewDoc } from '../db/preview';
import { toBlockView } from '../planning/blocks';
import { blockView } from '../planning/schemas';
import { isoOrNull as iso } from '../time/iso';

const candidateView = z.object({
  kind: z.enum(candidateKinds),
  taskId: z.string().nullable(),
  title: z.string().nullable(),
  start: z.string().nullable(),
  end: z.string().nullable(),
  score: z.number().nullable(),
  reason: z.string().nullable(),
});

export const previewView = z.object({
  id: z.string(),
  triggerId: z.string(),
  triggerType: z.string(),
  status: z.enum(previewStatuses),
  candidate: candidateView,
  alternatives: z.array(candidateView).meta({ description: 'The other candidates considered, best first' }),
  summaryText: z.string(),
  message: z.object({ title: z.string(), summary: z.string(), actionText: z.string().nullable(), actionUrl: z.string().nullable() }).nullable(),
  timeZone: z.string().nullable(),
  language: z.string().nullable(),
  expiresAt: z.string(),
  confirmedAt: z.string().nullable(),
  blockId: z.string().nullable(),
  createdAt: z.string(),
});
export type PreviewView = z.infer<typeof previewView>;

/** Blocks look the same here as in the schedule API. */
export { blockView, toBlockView };

function toCandidate(c: any): z.infer<typeof candidateView> {
  return {
    kind: c.kind,
    taskId: c.taskId ?? null,
    title: c.title ?? null,
    start: iso(c.start),
    end: iso(c.end),
    score: c.score ?? null,
    reason: c.reason ?? null,
  };
}

export function isExpired(p: Pick<PreviewDoc, 'status' | 'expiresAt'>, now: Date): boolean {
  return p.status === 'expired' || (p.status === 'ready' && p.expiresAt.getTime() <= now.getTime());
}

export function toPreviewView(p: PreviewDoc, now = new Date()): PreviewView {
  let alternatives: unknown[] = [];
  try {
    alternatives = p.alternatives ? JSON.parse(p.alternatives) : [];
  } catch {
    /* written by us; never malformed in practice */
  }
  return {
    id: String(p._id),
    triggerId: p.triggerId,
    triggerType: p.triggerType,
    status: isExpired(p, now) ? 'expired' : p.status,
    candidate: toCandidate(p.candidate),
    alternatives: alternatives.map(toCandidate),
    summaryText: p.summaryText,
    message: p.message?.title
      ? { title: p.message.title, summary: p.message.summary ?? '', actionText: p.message.actionText ?? null, actionUrl: p.message.actionUrl ?? null }
      : null,
    timeZone: p.timeZone ?? null,
    language: p.language ?? null,
    expiresAt: p.expiresAt.toISOString(),
    confirmedAt: iso(p.confirmedAt),
    blockId: p.blockId ?? null,
    createdAt: iso((p as { createdAt?: Date }).createdAt) ?? new Date(0).toISOString(),
  };
}
