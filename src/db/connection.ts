/** MongoDB connection (real MongoDB, Atlas, or FerretDB). Only features both support are used. */
import type { Connection } from 'mongoose';
import mongoose from 'mongoose';
import type { Config } from '../config';

export async function connectMongo(config: Pick<Config, 'MONGODB_URI' | 'MONGODB_DB'>): Promise<Connection> {
  const conn = mongoose.createConnection(config.MONGODB_URI, {
    dbName: config.MONGODB_DB,
    serverSelectionTimeoutMS: 5000,
    // FerretDB v1 has no retryable writes; real MongoDB does. Retrying a write is our job anyway.
    retryWrites: false,
  });
  await conn.asPromise();
  return conn;
}

export async function pingMongo(conn: Connection): Promise<void> {
  if (!conn.db) throw new Error('not connected');
  await conn.db.admin().command({ ping: 1 }, { timeoutMS: 2000 });
}
