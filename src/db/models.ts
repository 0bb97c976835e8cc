/** Every MongoDB model, registered on one connection (tests build their own). */
import type { Connection } from 'mongoose';
import { idempotencyKeyModel } from './idempotencyKey';
import { notificationChannelModel } from './notificationChannel';
import { notificationRecordModel } from './notificationRecord';
import { userSettingsModel } from './userSettings';
import { taskModel } from './task';
import { scheduleBlockModel } from './scheduleBlock';
import { dueJobModel, prepareDueJobs } from './dueJob';
import { reminderModel } from './reminder';
import { triggerModel } from './trigger';
import { previewModel } from './preview';
import { externalIdModel } from './externalId';
import { eventModels } from './event';

export type Models = ReturnType<typeof createModels>;

export function createModels(conn: Connection) {
  return {
    notificationRecords: notificationRecordModel(conn),
    notificationChannels: notificationChannelModel(conn),
    userSettings: userSettingsModel(conn),
    idempotencyKeys: idempotencyKeyModel(conn),
    tasks: taskModel(conn),
    scheduleBlocks: scheduleBlockModel(conn),
    dueJobs: dueJobModel(conn),
    triggers: triggerModel(conn),
    previews: previewModel(conn),
    reminders: reminderModel(conn),
    externalIds: externalIdModel(conn),
    ...eventModels(conn),
  };
}

/** Builds indexes (unique ones are what dedupes) before anything writes. */
export async function initModels(models: Models): Promise<void> {
  await Promise.all(Object.values(models).map((m) => m.init()));
  await prepareDueJobs(models.dueJobs);
}
