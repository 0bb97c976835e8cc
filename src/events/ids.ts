/** The ids of the events feature: derived, so writing or enqueueing twice is one thing. */
import { createHash, randomBytes } from 'node:crypto';
import type { EventType } from './types';

/** `evt_` + 24 hex digits of sha256(type|key): the same change always makes the same event. */
export const eventIdFor = (type: EventType, key: string): string => `evt_${createHash('sha256').update(`${type}|${key}`).digest('hex').slice(0, 24)}`;
export const eventIdPattern = /^evt_[0-9a-f]{24}$/;

/** One delivery per (endpoint, event). */
export const deliveryIdFor = (endpointId: string, eventId: string): string => `${endpointId}|${eventId}`;
export const deliveryIdPattern = /^[0-9a-f]{24}\|evt_[0-9a-f]{24}$/;

/** BullMQ job ids must not contain ':' nor be all digits; one job per delivery. */
export const eventJobId = (deliveryId: string): string => `event-${deliveryId}`;

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newEndpointSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
