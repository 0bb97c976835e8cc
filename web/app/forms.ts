/** Form fields with a place for the API's error next to each: a 400 names the field, the page puts the message there. */
import { ApiError, describeError } from './api';
import { h, uniqueId, type Child } from './dom';

export class FormErrors {
  private readonly slots = new Map<string, { input: HTMLElement; error: HTMLElement }>();
  /** For errors that name no field of this form (or no field at all). */
  readonly general: HTMLParagraphElement = h('p', { className: 'form-error', role: 'alert', hidden: true });

  /** An error slot for the field at this API path (`webhookUrl`, `quietHours.end`). */
  slot(path: string, input: HTMLElement): HTMLElement {
    const error = h('p', { className: 'field-error', id: uniqueId('error'), 'data-field': path, role: 'alert', hidden: true });
    const described = input.getAttribute('aria-describedby');
    input.setAttribute('aria-describedby', described ? `${described} ${error.id}` : error.id);
    this.slots.set(path, { input, error });
    return error;
  }

  clear(): void {
    for (const { input, error } of this.slots.values()) {
      error.hidden = true;
      error.textContent = '';
      input.removeAttribute('aria-invalid');
    }
    this.general.hidden = true;
    this.general.textContent = '';
  }

  /** Shows an error from the API: each named field next to its input (the closest one we have), the rest above the button. */
  show(err: unknown): void {
    this.clear();
    const leftovers: string[] = [];
    const fields = err instanceof ApiError ? err.fieldErrors() : [];
    for (const { field, message } of fields) {
      const slot = this.closestSlot(field);
      if (!slot) {
        leftovers.push(`${field}: ${message}`);
        continue;
      }
      const [, rest] = slot;
      rest.error.textContent = rest.error.textContent ? `${rest.error.textContent}; ${message}` : message;
      rest.error.hidden = false;
      rest.input.setAttribute('aria-invalid', 'true');
    }
    if (fields.length === 0) leftovers.push(describeError(err));
    if (leftovers.length) {
      this.general.textContent = leftovers.join('; ');
      this.general.hidden = false;
    }
    const first = [...this.slots.values()].find((s) => !s.error.hidden);
    first?.input.focus();
  }

  private closestSlot(field: string) {
    const parts = field.split('.');
    for (let n = parts.length; n > 0; n--) {
      const path = parts.slice(0, n).join('.');
      const slot = this.slots.get(path);
      if (slot) return [path, slot] as const;
    }
    return undefined;
  }
}

/** A labelled field: label, input, an optional hint, and the error slot for `path`. */
export function field(
  label: string,
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  errors: FormErrors,
  path: string,
  hint?: Child,
): HTMLDivElement {
  input.id ||= uniqueId(`f-${path.replace(/\W/g, '-')}`);
  input.name ||= path;
  let hintEl: HTMLElement | null = null;
  if (hint) {
    hintEl = h('p', { className: 'hint', id: uniqueId('hint') }, hint);
    input.setAttribute('aria-describedby', hintEl.id);
  }
  const error = errors.slot(path, input);
  return h('div', { className: 'field', 'data-field': path }, h('label', { for: input.id }, label), input, hintEl, error);
}

export function checkbox(label: string, input: HTMLInputElement, errors?: FormErrors, path?: string): HTMLDivElement {
  input.type = 'checkbox';
  input.id ||= uniqueId('check');
  const error = errors && path ? errors.slot(path, input) : null;
  return h('div', { className: 'field field-check' }, h('label', { for: input.id }, input, ' ', label), error);
}

export function select(options: Array<[value: string, label: string]>, value: string, attrs: Record<string, string> = {}): HTMLSelectElement {
  const el = h('select', attrs, ...options.map(([v, l]) => h('option', { value: v }, l)));
  el.value = value;
  return el;
}

/** Disables the button while the action runs, so a double click is one request. */
export async function busy<T>(button: HTMLButtonElement, action: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/**
 * A form's submit: the browser's own submit is stopped, the last "saved" note and the errors are
 * cleared, the button is busy while `save` runs, and an error from it is shown next to its fields.
 */
export function onSubmit(form: HTMLFormElement, button: HTMLButtonElement, saved: HTMLElement, errors: FormErrors, save: () => Promise<void>): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    saved.textContent = '';
    void busy(button, async () => {
      errors.clear();
      try {
        await save();
      } catch (err) {
        errors.show(err);
      }
    });
  });
}
