/** Which store errors the API answers 503 (try again) rather than 500: pure, no services. */
import { mongo } from 'mongoose';
import { isDuplicateKey, isStoreUnavailable } from '../src/db/errors';
import { StoreBusyError } from '../src/db/guarded';

test.each([
  ['FerretDB/SQLite refusing a write on its busy lock', new mongo.MongoServerError({ message: 'database is locked (SQLITE_BUSY)' }), true],
  ['a lost connection', new mongo.MongoNetworkError('connection 3 to 127.0.0.1:27017 closed'), true],
  ['a duplicate key (a race decided, not a busy store)', new mongo.MongoServerError({ message: 'E11000 duplicate key error', code: 11000 }), false],
  ['any other server error', new mongo.MongoServerError({ message: 'unknown operator: $foo' }), false],
  ['a plain error', new Error('boom'), false],
  ['a lock that stayed taken (answered by its own branch)', new StoreBusyError('trigger:1'), false],
])('%s', (_name, err, expected) => {
  expect(isStoreUnavailable(err)).toBe(expected);
});

test('a duplicate key is recognised by its code', () => {
  expect(isDuplicateKey(new mongo.MongoServerError({ message: 'E11000', code: 11000 }))).toBe(true);
});
