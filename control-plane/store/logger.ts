/**
 * The one logging need of the store backends: warnings about things that happen outside any
 * caller's call (an etcd lease lost with no `onLost` listener, a failed background snapshot).
 * A pino `Logger` fits this shape; the default goes through `process.emitWarning`.
 */

export interface StoreLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Emits each warning as a Node process warning (`WeftStoreWarning`). */
export const processWarningLogger: StoreLogger = {
  warn(fields, message) {
    process.emitWarning(`${message} ${JSON.stringify(fields)}`, 'WeftStoreWarning');
  },
};
