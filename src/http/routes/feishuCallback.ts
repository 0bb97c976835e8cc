/**
 * POST /api/v1/feishu/callback: Feishu/Lark calls it when a user presses a button on a card
 * dueflow's app bot sent. No bearer: Feishu's signature over the raw body authenticates it, so
 * the route has its own raw-body router, mounted before the API's JSON parser.
 *
 * Feishu retries an unanswered callback with the same event_id, and wants an answer within 3 s:
 * each event_id is answered once by the handler (the answer is kept 48 h in Redis and replayed),
 * and a slow handler is answered for with an info toast while it finishes.
 */
import type { Request, Response } from 'express';
import express, { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../../context';
import type { CardActionAnswer, CardActionEvent, CardActionHandler } from '../../cards/actions';
import {
  CallbackDecryptError,
  callbackBodyDoc,
  cardActionAnswerSchema,
  decryptCallback,
  encryptedCallbackBody,
  parseCallback,
  signatureHeaders,
  verifyCallbackSignature,
} from '../../feishuApp/callback';
import { safeEqual } from '../auth';
import { errorHandler, HttpError, unauthorized, validationError } from '../errors';
import type { HandlerResult, RouteDef } from '../route';
import { defineRoute } from '../route';

export const feishuCallbackPath = '/api/v1/feishu/callback';

/** Feishu gives up after 3 s; answering at 2.5 s leaves room for the network. */
export const ANSWER_WITHIN_MS = 2500;
/** A second copy of an event in progress waits this long for the first one's answer. */
export const PEER_WAIT_MS = 2000;
/** Feishu retries for well under a day; 48 h covers it twice. */
export const ANSWER_TTL_MS = 48 * 3_600_000;
/** The "in progress" marker outlives any sane handler, and frees the event_id if the process died mid-way. */
export const IN_PROGRESS_TTL_MS = 60_000;

const PENDING = 'pending';

const toast = (type: CardActionAnswer['toast']['type'], content: string): CardActionAnswer => ({ toast: { type, content } });
const stillWorking = () => toast('info', 'Working on it: the card will show the result shortly.');
const alreadyHandled = () => toast('info', 'This action is already being handled.');

const signatureHeadersDoc = z.object({
  [signatureHeaders.timestamp]: z.string().describe('Unix seconds; within 5 minutes of the server clock'),
  [signatureHeaders.nonce]: z.string(),
  [signatureHeaders.signature]: z.string().describe('hex(sha256(timestamp + nonce + FEISHU_ENCRYPT_KEY + raw body))'),
});

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function rawBodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', `${field} is not valid JSON`, [{ field, message: 'not valid JSON' }]);
  }
}

/** The plain callback JSON: decrypted first when the body is Feishu's {encrypt} envelope. */
function plainCallback(rawBody: Buffer, encryptKey: string): unknown {
  const json = parseJson(rawBody.toString('utf8'), 'body');
  const envelope = encryptedCallbackBody.safeParse(json);
  if (!envelope.success) {
    if (json && typeof json === 'object' && 'encrypt' in json) throw validationError('body', envelope.error);
    return json;
  }
  try {
    return parseJson(decryptCallback(envelope.data.encrypt, encryptKey), 'body.encrypt');
  } catch (err) {
    if (err instanceof CallbackDecryptError)
      throw new HttpError(400, 'validation_failed', `body.encrypt: ${err.message}`, [{ field: 'body.encrypt', message: err.message }]);
    throw err;
  }
}

/** Everything between "the signature checks out" and the answer, per event_id. */
function createReplayGuard(ctx: AppContext, handler: CardActionHandler) {
  const { redis, logger, config } = ctx;
  const keyOf = (eventId: string) => `${config.QUEUE_PREFIX}:feishu-callback:${eventId}`;

  /** The handler's answer, or an error toast when it throws; never rejects. */
  async function answerOf(event: CardActionEvent): Promise<CardActionAnswer> {
    try {
      return cardActionAnswerSchema.parse(await handler(event));
    } catch (err) {
      const e = err as Error;
      logger.error(
        { eventId: event.eventId, openMessageId: event.openMessageId, err: { name: e?.name, message: String(e?.message ?? e).slice(0, 300) } },
        'card action handler failed',
      );
      return toast('error', 'dueflow could not complete this action. Please try again later.');
    }
  }

  async function store(event: CardActionEvent, answer: CardActionAnswer): Promise<void> {
    await redis.set(keyOf(event.eventId), JSON.stringify(answer), 'PX', ANSWER_TTL_MS).catch((err: Error) => {
      logger.warn({ eventId: event.eventId, err: err.message }, 'could not store the card action answer: a replay would run the action again');
    });
  }

  /** The stored answer, `pending` while the first copy works, undefined when there is none. */
  async function stored(eventId: string): Promise<CardActionAnswer | typeof PENDING | undefined> {
    const value = await redis.get(keyOf(eventId));
    if (value === null) return undefined;
    if (value === PENDING) return PENDING;
    try {
      return cardActionAnswerSchema.parse(JSON.parse(value));
    } catch {
      return undefined;
    }
  }

  /** Another copy holds the event_id: its answer when it comes within PEER_WAIT_MS, else an info toast. */
  async function answerOfPeer(event: CardActionEvent): Promise<{ answer: CardActionAnswer; outcome: string }> {
    const deadline = Date.now() + PEER_WAIT_MS;
    for (;;) {
      const value = await stored(event.eventId).catch(() => undefined);
      if (value && value !== PENDING) return { answer: value, outcome: 'replayed' };
      if (Date.now() >= deadline) return { answer: alreadyHandled(), outcome: 'in_progress_elsewhere' };
      await delay(100);
    }
  }

  return async function answer(event: CardActionEvent): Promise<{ answer: CardActionAnswer; outcome: string }> {
    let taken: string | null;
    try {
      taken = await redis.set(keyOf(event.eventId), PENDING, 'PX', IN_PROGRESS_TTL_MS, 'NX');
    } catch (err) {
      // Without the key a replay cannot be told apart: better the user presses again than the action runs twice.
      logger.error({ eventId: event.eventId, err: (err as Error).message }, 'could not reserve the card action event id');
      return { answer: toast('error', 'dueflow is briefly unavailable. Please try again in a moment.'), outcome: 'redis_unavailable' };
    }
    if (taken !== 'OK') return answerOfPeer(event);

    const started = Date.now();
    const work = answerOf(event).then(async (a) => {
      await store(event, a);
      logger.info({ eventId: event.eventId, openMessageId: event.openMessageId, toast: a.toast.type, ms: Date.now() - started }, 'card action finished');
      return a;
    });
    const first = await Promise.race([work, delay(ANSWER_WITHIN_MS).then(() => undefined)]);
    if (first) return { answer: first, outcome: 'answered' };
    return { answer: stillWorking(), outcome: 'answered_before_handler_finished' };
  };
}

/** The route, as documented in /openapi.json; feishuCallbackRouter serves it from the raw body. */
export function feishuCallbackRoute(ctx: AppContext, handler: CardActionHandler): RouteDef {
  const { config, logger } = ctx;
  const answerOnce = createReplayGuard(ctx, handler);
  const refuse = (reason: string, message: string) => {
    logger.info({ reason }, 'feishu callback refused');
    return unauthorized(message);
  };
  const tokenMatches = (token: string | undefined) =>
    !config.FEISHU_VERIFICATION_TOKEN || (token !== undefined && safeEqual(token, config.FEISHU_VERIFICATION_TOKEN));
  const appMatches = (appId: string) => Boolean(config.FEISHU_APP_ID) && safeEqual(appId, config.FEISHU_APP_ID!);

  return defineRoute({
    method: 'post',
    path: feishuCallbackPath,
    tag: 'feishu',
    auth: 'feishu',
    summary:
      'Feishu/Lark card callback (card.action.trigger, url_verification): signed with FEISHU_ENCRYPT_KEY, encrypted or plain; each event_id is acted on once and its answer replayed',
    headers: signatureHeadersDoc,
    // Documentation only: the body is verified and parsed from its raw bytes below.
    body: callbackBodyDoc,
    responses: {
      200: {
        description: 'url_verification: {challenge}; card.action.trigger: a toast and maybe the card redrawn; other events: {}',
        schema: z.union([z.object({ challenge: z.string() }), cardActionAnswerSchema, z.object({})]),
      },
      413: { description: 'The body is larger than BODY_LIMIT' },
    },
    handler: async ({ req }): Promise<HandlerResult> => {
      const encryptKey = config.FEISHU_ENCRYPT_KEY;
      if (!encryptKey) throw refuse('no_encrypt_key', 'callbacks are refused: FEISHU_ENCRYPT_KEY is not set');
      const rawBody = rawBodyOf(req);
      const check = verifyCallbackSignature({ rawBody, headers: req.headers, encryptKey, nowMs: Date.now() });
      if (!check.ok) throw refuse(check.reason, check.message);

      const parsed = parseCallback(plainCallback(rawBody, encryptKey));
      if (parsed.kind === 'invalid') throw validationError('body', parsed.error);
      if (!tokenMatches(parsed.token)) throw refuse('bad_token', 'token does not match FEISHU_VERIFICATION_TOKEN');
      if (parsed.kind === 'url_verification') return { status: 200, body: { challenge: parsed.challenge } };
      if (!appMatches(parsed.appId)) throw refuse('wrong_app', 'header.app_id does not match FEISHU_APP_ID');
      if (parsed.kind === 'other_event') {
        logger.debug({ eventId: parsed.eventId, eventType: parsed.eventType }, 'feishu event ignored');
        return { status: 200, body: {} };
      }
      const { answer, outcome } = await answerOnce(parsed.event);
      logger.info(
        { eventId: parsed.event.eventId, openMessageId: parsed.event.openMessageId, outcome, toast: answer.toast.type },
        'feishu card callback answered',
      );
      return { status: 200, body: answer };
    },
  });
}

/** The callback's own router: the raw body (up to BODY_LIMIT) for the signature, its own error shape. */
export function feishuCallbackRouter(ctx: AppContext, handler: CardActionHandler): Router {
  const route = feishuCallbackRoute(ctx, handler);
  const router = Router();
  router.post(
    route.path,
    express.raw({ type: () => true, limit: ctx.config.BODY_LIMIT }),
    async (req: Request, res: Response) => {
      const result = await route.handler({ params: {}, query: {}, body: undefined, userId: '', req, res });
      res.status(result.status).json(result.body);
    },
    errorHandler(ctx.logger),
  );
  return router;
}
