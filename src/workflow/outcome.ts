/** What happened to a trigger when the workflow ran it (run.ts, and the reminder step in reminders/notify.ts). */
export type WorkflowOutcome =
  | { status: 'preview_generated'; previewId: string; notificationId: string }
  /** An anomaly: no preview, its notification is requested. */
  | { status: 'notified'; notificationId: string }
  | { status: 'closed'; reason: string }
  /** Not claimable: already done, or another run holds it until `leaseEndsAt`. */
  | { status: 'not_claimed'; current: string; leaseEndsAt?: Date };
