/**
 * The pub/sub side of the Redis store, on its own connection (a connection in subscriber mode can run no
 * other commands, and must never hold up a lock or a commit).
 *
 * Instead of letting ioredis reconnect and resubscribe behind our back, a lost subscriber connection is
 * replaced by a new one that subscribes and only then reports `onResubscribed`: from that moment no
 * message can be missed, so a re-read started then sees every change made while we were away. For a
 * Cluster the replacement goes to the next node (PUBLISH reaches every node of a Cluster), so one dead node
 * does not silence the store. A PING every 10 x commandTimeoutMs finds a connection that stopped answering
 * (a frozen or unreachable Redis) that TCP would not notice for minutes.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { StoreError } from '../../errors.js';
import { reasonOf, reconnectDelay, withDeadline, type ConnectionErrorReporter } from './connections.js';
import type { RedisStoreEventListener } from './options.js';

/** PING interval: 10 x commandTimeoutMs (5 s by default), at least 1 s. */
const heartbeatInterval = (commandTimeoutMs: number): number => Math.max(10 * commandTimeoutMs, 1_000);

export interface ChangeSubscriberOptions {
  /** psubscribe pattern. */
  readonly pattern: string;
  /** Options of the n-th connection (n counts every replacement), so a Cluster can rotate over its nodes. */
  readonly connectionOptions: (attempt: number) => RedisOptions;
  /** For events: where the n-th connection goes. */
  readonly endpointOf: (options: RedisOptions) => string;
  readonly commandTimeoutMs: number;
  readonly onMessage: (channel: string, message: string) => void;
  /** Subscribed again after a lost connection: messages sent in between were missed. */
  readonly onResubscribed: () => void;
  readonly onEvent: RedisStoreEventListener;
  readonly reportError: ConnectionErrorReporter;
}

export class ChangeSubscriber {
  readonly #options: ChangeSubscriberOptions;
  #client: Redis | undefined;
  #attempt = 0;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #heartbeat: NodeJS.Timeout;

  constructor(options: ChangeSubscriberOptions) {
    this.#options = options;
    this.#heartbeat = setInterval(() => this.#checkAlive(), heartbeatInterval(options.commandTimeoutMs));
    this.#heartbeat.unref();
  }

  /** The first connection; rejects (and stops) when it cannot subscribe. */
  async start(): Promise<void> {
    try {
      await this.#connect();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    try {
      if (client.status === 'ready') await withDeadline(client.quit(), this.#options.commandTimeoutMs);
    } catch {
      // dropped below
    } finally {
      client.disconnect();
    }
  }

  /** Connects and subscribes; resolves to the endpoint. Whatever ends this connection schedules the next one. */
  async #connect(): Promise<string> {
    const { pattern, commandTimeoutMs, onEvent } = this.#options;
    const connectionOptions = this.#options.connectionOptions(this.#attempt);
    const endpoint = this.#options.endpointOf(connectionOptions);
    const client = new Redis({ ...connectionOptions, autoResubscribe: false, retryStrategy: null });
    this.#client = client;
    let subscribed = false;
    let retired = false;
    // Called once per connection, by 'end' (retryStrategy null: every loss ends it) or by a failed start.
    const retire = (): void => {
      if (retired) return;
      retired = true;
      client.disconnect();
      if (this.#closed) return;
      if (subscribed) onEvent('disconnected', { connection: 'subscriber', endpoint });
      this.#scheduleReplacement();
    };
    client.on('error', (error: Error) => this.#options.reportError('subscriber', endpoint, error.message));
    client.on('pmessage', (_pattern: string, channel: string, message: string) => this.#options.onMessage(channel, message));
    client.once('end', retire);
    try {
      await withDeadline(client.connect(), (connectionOptions.connectTimeout ?? 1_000) + commandTimeoutMs);
      await withDeadline(client.psubscribe(pattern), 2 * commandTimeoutMs);
    } catch (error) {
      retire();
      throw new StoreError(`${endpoint}: ${reasonOf(error)}`, { cause: error, retryable: true });
    }
    subscribed = true;
    return endpoint;
  }

  #scheduleReplacement(): void {
    this.#attempt += 1;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closed) return;
      this.#connect().then(
        (endpoint) => {
          if (this.#closed) return;
          this.#attempt = 0;
          this.#options.onEvent('reconnected', { connection: 'subscriber', endpoint });
          this.#options.onResubscribed();
        },
        () => {
          // retire() has scheduled the next attempt.
        },
      );
    }, reconnectDelay(this.#attempt));
  }

  #checkAlive(): void {
    const client = this.#client;
    if (this.#closed || !client || client.status !== 'ready') return;
    withDeadline(client.ping(), 2 * this.#options.commandTimeoutMs).catch(() => {
      // Not answering: destroy the socket (disconnect() would wait for a FIN the peer may never send);
      // 'end' then schedules a replacement.
      if (this.#client === client) client.stream.destroy();
    });
  }
}
