// Option and argument checks shared by every facade. Messages follow one form:
// "Expected <what is allowed> for <name> but received <what came>".
import { closest, distance } from 'fastest-levenshtein';

/** A short description of a value for error messages: "a string", "the number 3", "an Array". */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an Array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'number':
      return `the number ${value}`;
    case 'string':
      return `the string '${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
    case 'bigint':
      return `the bigint ${value}n`;
    case 'boolean':
      return String(value);
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default: {
      const name = (value as object).constructor?.name;
      return name && name !== 'Object' ? `an instance of ${name}` : 'a plain object';
    }
  }
}

export function typeError(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

/** ", did you mean 'x'?" when one of `known` is a likely typo of `name`, else "". */
export function didYouMean(name: string, known: readonly string[]): string {
  const best = closest(name, known as string[]);
  return best !== undefined && distance(name.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Checks an options bag: undefined becomes {}, anything but a plain object is a TypeError,
 *  and a key outside `allowed` (usually a typo) is a TypeError that lists the allowed keys. */
export function options<T extends object>(value: T | undefined, name: string, allowed: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw typeError(name, 'an options object', value);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`Unknown option '${key}' in ${name}${didYouMean(key, allowed)}; allowed options are ${allowed.join(', ')}`);
    }
  }
  return value;
}

/** The longest delay a Node timer takes, in ms (2^31 - 1, about 24.8 days): a longer one Node
 *  turns into 1 ms, with only a warning. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function integer(value: unknown, name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError(name, 'an integer', value);
  if (!Number.isInteger(value)) throw new RangeError(`Expected an integer for ${name} but received ${value}`);
  if (value < min || value > max) {
    // Past 2^53 - 1 a number holds no exact integer (2 ** 70 + 1 === 2 ** 70): said as such.
    const allowed =
      max !== Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : value > max ? 'at most 2^53 - 1 (beyond, a number is not exact)' : `at least ${min}`;
    throw new RangeError(`${name} must be ${allowed}, got ${value}`);
  }
  return value;
}

export function flag(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw typeError(name, 'true or false', value);
  return value;
}

export function finiteNumber(value: unknown, name: string): number {
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a finite number, got ${value}`);
  return value;
}

/** An AbortSignal (or an object that behaves as one: `aborted`, `addEventListener`,
 *  `removeEventListener`), or undefined. */
export function abortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  const s = value as Partial<AbortSignal> | null;
  if (typeof s !== 'object' || s === null || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function' || typeof s.removeEventListener !== 'function') {
    throw typeError(name, 'an AbortSignal (AbortController.signal, AbortSignal.timeout(ms))', value);
  }
  return value as AbortSignal;
}

export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw typeError(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new RangeError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got '${value}'${didYouMean(value, allowed)}`);
  }
  return value as T;
}

/** A tensor shape: an Array of non-negative integers. */
export function shape(value: unknown, name: string): number[] {
  if (!Array.isArray(value)) throw typeError(name, 'an Array of non-negative integers', value);
  if (value.length > 64) throw new RangeError(`${name} has ${value.length} dimensions; at most 64 are allowed`);
  return value.map((dim, i) => integer(dim, `${name}[${i}]`, 0));
}
