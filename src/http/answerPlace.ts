/** Where a user's answer came from: the dueflow page says so (x-dueflow-client: app); any other caller with a user token is the API. */
import type { Request } from 'express';
import type { AnswerPlace } from '../db/trigger';

export const answerPlace = (req: Request): AnswerPlace => (req.header('x-dueflow-client') === 'app' ? 'app' : 'api');
