/** user_settings: one document per user; what they want to hear, and when. */
import type { Connection, InferSchemaType } from 'mongoose';
import { Schema } from 'mongoose';

export const defaultTimeZone = 'Asia/Shanghai';

const settingsSchema = new Schema(
  {
    userId: { type: String, required: true, unique: true },
    timeZone: { type: String, required: true, default: defaultTimeZone },
    quietHours: { type: new Schema({ start: String, end: String }, { _id: false }), default: undefined },
    optOutTriggerTypes: { type: [String], default: [] },
    /** Local HH:mm times in which free slots are looked for (absent: the default, 08:00 to 22:00). */
    workingHours: { type: new Schema({ start: String, end: String }, { _id: false }), default: undefined },
    /** Language of messages: zh-CN (absent: the default) or en. */
    language: String,
    /** Minutes after a planned block's end before it is missed (absent: MISSED_BLOCK_GRACE_MS). */
    missedBlockGraceMinutes: Number,
    /** Where messages go (absent: the enabled channel), and where an unacknowledged critical anomaly goes next. */
    primaryChannel: String,
    fallbackChannel: String,
    /** Escalation of critical anomalies (absent: the default, 15 minutes). */
    escalation: { type: new Schema({ afterMinutes: Number }, { _id: false }), default: undefined },
  },
  { collection: 'user_settings', timestamps: true },
);

export type UserSettingsDoc = InferSchemaType<typeof settingsSchema>;

export function userSettingsModel(conn: Connection) {
  return conn.model('UserSettings', settingsSchema);
}
