/** A date as the API shows it: ISO 8601, or null when there is none. */
export const isoOrNull = (d: Date | string | null | undefined): string | null => (d ? new Date(d).toISOString() : null);
