/**
 * From a planning context to what is wrong (issues) and what could be done (candidates), best
 * first. Pure and deterministic: the same context always gives the same choice.
 *
 * Score (higher wins), documented in one place:
 * - placing the task in a slot (add_task_to_schedule, or create_makeup_block for unfinished
 *   feedback and missed blocks): 100, − 40 when the slot ends after the deadline, − 30 when the slot is shorter
 *   than the task needs, − the hours from now to the slot's start (0–24): the earliest slot that
 *   fits before the deadline wins;
 * - ask_user: 40 (only offered when no slot fits before the deadline);
 * - notify_only: 10 (always offered, the fallback).
 * Ties go to the earlier start, then to the order of the kinds above.
 */
import type { candidateKinds } from '../db/preview';
import type { Interval, WorkingHours } from './freeSlots';
import type { Language } from './message';
import { HOUR, MINUTE } from '../time/zonedTime';

export type CandidateKind = (typeof candidateKinds)[number];
export type TriggerType = 'important_urgent_task' | 'unfinished_feedback' | 'missed_block';

/** A block that was not done (reported unfinished, or a planned block whose end passed): a make-up block is proposed. */
export const isMakeupTrigger = (t: string): boolean => t === 'unfinished_feedback' || t === 'missed_block';

export const issueKinds = ['no_free_slot', 'not_enough_capacity', 'can_place', 'needs_makeup_block', 'no_slot_before_deadline'] as const;
export type Issue = (typeof issueKinds)[number];

export const DEFAULT_ESTIMATE_MINUTES = 60;
export const MAX_CANDIDATES = 3;
const MAX_PLACEMENTS = 2;

export interface PlanningBlock extends Interval {
  id: string;
  title: string;
  taskId?: string | null;
  status: string;
}

export interface PlanningContext {
  userId: string;
  triggerType: TriggerType;
  now: Date;
  /** The rolling window: [now, now + 24 h). */
  window: Interval;
  timeZone: string;
  language: Language;
  workingHours: WorkingHours;
  task: { id: string; title: string; priority: number; status: string; deadline: Date | null; estimatedMinutes: number | null };
  /** For unfinished feedback and missed blocks: the block not done. */
  block: PlanningBlock | null;
  /** Minutes to place: the task's estimate (default 60), or the unfinished block's length. */
  neededMinutes: number;
  blocks: PlanningBlock[];
  freeSlots: Interval[];
}

export interface Candidate {
  kind: CandidateKind;
  taskId: string;
  title: string;
  start?: Date;
  end?: Date;
  score: number;
  reason: string;
}

const kindOrder: CandidateKind[] = ['add_task_to_schedule', 'create_makeup_block', 'ask_user', 'notify_only'];
const minutes = (i: Interval) => (i.end.getTime() - i.start.getTime()) / MINUTE;

export function observe(c: PlanningContext): Issue[] {
  const issues: Issue[] = [];
  const longest = Math.max(0, ...c.freeSlots.map(minutes));
  if (c.freeSlots.length === 0) issues.push('no_free_slot');
  else if (longest < c.neededMinutes) issues.push('not_enough_capacity');
  else issues.push('can_place');
  if (isMakeupTrigger(c.triggerType)) issues.push('needs_makeup_block');
  if (
    c.task.deadline &&
    !c.freeSlots.some((s) => s.start.getTime() + Math.min(c.neededMinutes * MINUTE, s.end.getTime() - s.start.getTime()) <= c.task.deadline!.getTime())
  ) {
    issues.push('no_slot_before_deadline');
  }
  return issues;
}

function placement(c: PlanningContext, slot: Interval): Candidate {
  const length = Math.min(c.neededMinutes, minutes(slot));
  const start = slot.start;
  const end = new Date(start.getTime() + length * MINUTE);
  const late = c.task.deadline ? end.getTime() > c.task.deadline.getTime() : false;
  const short = length < c.neededMinutes;
  const hours = Math.max(0, (start.getTime() - c.now.getTime()) / HOUR);
  const score = Math.round((100 - (late ? 40 : 0) - (short ? 30 : 0) - hours) * 100) / 100;
  const reasons = [
    short ? `slot shorter than the ${c.neededMinutes} min needed` : 'fits',
    late ? 'ends after the deadline' : c.task.deadline ? 'before the deadline' : 'no deadline',
  ];
  return {
    kind: isMakeupTrigger(c.triggerType) ? 'create_makeup_block' : 'add_task_to_schedule',
    taskId: c.task.id,
    title: c.task.title,
    start,
    end,
    score,
    reason: reasons.join(', '),
  };
}

const compare = (a: Candidate, b: Candidate) =>
  b.score - a.score || (a.start?.getTime() ?? Infinity) - (b.start?.getTime() ?? Infinity) || kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind);

/** Up to three candidates, best first. */
export function generateCandidates(c: PlanningContext, issues: Issue[]): Candidate[] {
  const placements = c.freeSlots.map((s) => placement(c, s)).sort(compare);
  // A placement as good as it gets: the whole task, finished before the deadline.
  const fitsInTime = placements.some(
    (p) => p.end!.getTime() - p.start!.getTime() >= c.neededMinutes * MINUTE && (!c.task.deadline || p.end!.getTime() <= c.task.deadline.getTime()),
  );
  const out: Candidate[] = placements.slice(0, fitsInTime ? MAX_PLACEMENTS : 1);
  if (!fitsInTime) {
    const why = issues.includes('no_free_slot')
      ? 'no free slot in working hours'
      : issues.includes('not_enough_capacity')
        ? 'no free slot long enough'
        : 'no slot before the deadline';
    out.push({ kind: 'ask_user', taskId: c.task.id, title: c.task.title, score: 40, reason: why });
  }
  out.push({ kind: 'notify_only', taskId: c.task.id, title: c.task.title, score: 10, reason: 'fallback: just tell the user' });
  return out.sort(compare).slice(0, MAX_CANDIDATES);
}

export const chooseCandidate = (candidates: Candidate[]): Candidate => candidates[0];
