/**
 * The MongoDB commands a piece of code sends: models on a second connection of the test's
 * database with the driver's command monitoring on, each command logged as "<name> <collection>".
 */
import mongoose, { type Connection } from 'mongoose';
import type { Config } from '../../src/config';
import { createModels, type Models } from '../../src/db/models';

export interface CommandLog {
  /** Models whose every command is logged. */
  models: Models;
  /** Runs fn and answers the commands it sent (and what it returned). */
  counted<T>(fn: () => Promise<T>): Promise<{ value: T; commands: string[] }>;
  close(): Promise<void>;
}

export async function commandLog(config: Pick<Config, 'MONGODB_URI' | 'MONGODB_DB'>): Promise<CommandLog> {
  const conn: Connection = mongoose.createConnection(config.MONGODB_URI, { dbName: config.MONGODB_DB, monitorCommands: true });
  await conn.asPromise();
  let commands: string[] = [];
  conn.getClient().on('commandStarted', (e: { commandName: string; command: Record<string, unknown> }) => {
    // Index builds of this second connection's models are not the code's.
    if (e.commandName !== 'createIndexes') commands.push(`${e.commandName} ${String(e.command[e.commandName])}`);
  });
  const models = createModels(conn);
  await Promise.all(Object.values(models).map((m) => m.init()));
  return {
    models,
    counted: async (fn) => {
      commands = [];
      const value = await fn();
      const sent = commands;
      commands = [];
      return { value, commands: sent };
    },
    close: () => conn.close(),
  };
}
