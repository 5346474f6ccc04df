/**
 * Bounds on one Redis command, shared by the config schema and the Redis store's own option check, so that
 * proxy.yaml and the programmatic API accept the same values.
 */
export const COMMAND_TIMEOUT_MS = { min: 50, max: 10_000, default: 500 } as const;
