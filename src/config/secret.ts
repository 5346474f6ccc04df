import { inspect } from 'node:util';

/**
 * A secret value from the configuration. It prints as "[secret]" in logs, JSON and util.inspect, so a
 * config object that reaches a log line by mistake leaks nothing; code that needs the value calls reveal().
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return '[secret]';
  }

  toString(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return '[secret]';
  }
}
