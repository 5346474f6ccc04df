/**
 * The upgraded connections of one proxy: the cap `limits.maxUpgradedConnections` (a place is taken when a
 * handshake starts, so handshakes under way count too, and given back when its connection closes or the
 * handshake fails), and the shutdown that closes them all with close frames, then cuts what is left.
 */
import type { Duplex } from 'node:stream';
import type { UpgradedConnection } from './upgraded-connection.js';

export class UpgradedConnections {
  readonly #max: number;
  readonly #open = new Set<UpgradedConnection>();
  /** Client sockets whose handshake is under way: cut if the shutdown outlasts its time. */
  readonly #handshaking = new Set<Duplex>();
  #places = 0;
  #shuttingDown = false;
  #onIdle: (() => void) | undefined;

  constructor(max: number) {
    this.#max = max;
  }

  get openCount(): number {
    return this.#open.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Takes a place for a handshake on `client`; false when the cap is reached. */
  tryEnter(client: Duplex): boolean {
    if (this.#places >= this.#max) return false;
    this.#places++;
    this.#handshaking.add(client);
    return true;
  }

  /** The handshake on `client` ended without a connection: its place is free again. */
  leave(client: Duplex): void {
    if (!this.#handshaking.delete(client)) return;
    this.#release();
  }

  /** The handshake on `client` became `connection`, which keeps the place until it closes. */
  opened(client: Duplex, connection: UpgradedConnection): void {
    this.#handshaking.delete(client);
    this.#open.add(connection);
    if (this.#shuttingDown) connection.close('shutdown');
  }

  closed(connection: UpgradedConnection): void {
    if (!this.#open.delete(connection)) return;
    this.#release();
  }

  /**
   * Closes every connection with close frames (and those whose handshake finishes meanwhile); resolves
   * when none is left, or after `timeoutMs`, when the rest are cut.
   */
  closeAll(timeoutMs: number): Promise<void> {
    this.#shuttingDown = true;
    for (const connection of this.#open) connection.close('shutdown');
    if (this.#places === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const connection of this.#open) connection.destroy();
        for (const client of this.#handshaking) client.destroy();
        this.#onIdle = undefined;
        resolve();
      }, timeoutMs);
      this.#onIdle = () => {
        clearTimeout(timer);
        this.#onIdle = undefined;
        resolve();
      };
    });
  }

  #release(): void {
    this.#places--;
    if (this.#places === 0) this.#onIdle?.();
  }
}
