/** user_settings: one document per user; what they want to hear, and when. */
import { Connection, InferSchemaType, Schema } from 'mongoose';

export const defaultTimeZone = 'Asia/Shanghai';

const settingsSchema = new Schema(
  {
    userId: { type: String, required: true, unique: true },
    timeZone: { type: String, required: true, default: defaultTimeZone },
    quietHours: { type: new Schema({ start: String, end: String }, { _id: false }), default: undefined },
    optOutTriggerTypes: { type: [String], default: [] },
  },
  { collection: 'user_settings', timestamps: true },
);

export type UserSettingsDoc = InferSchemaType<typeof settingsSchema>;

export function userSettingsModel(conn: Connection) {
  return conn.model('UserSettings', settingsSchema);
}
