/**
 * The proxy's TCP proxy listeners (`Listener.tcpProxy`) across config versions, with the same
 * all-or-nothing discipline as the HTTP listeners (proxy.ts): `prepare` binds every new or moved
 * listener first (and closes those it bound if one fails), `commit` swaps them in without failing,
 * and `abort` undoes a prepare whose version was rejected later. A listener that stays on the same
 * address and port keeps its socket and connections and takes the new `tcpProxy` for new
 * connections; a removed one stops accepting and drains.
 *
 * Also builds the inbound side's handler (`inboundTcpHandler`) for an HTTP listener's `inboundTcp`.
 */
import type { TLSSocket } from 'node:tls';
import { ConfigError } from '../config/errors.ts';
import type { Listener } from '../config/types.ts';
import type { TlsSource } from '../identity.ts';
import { InboundTcpHandler } from './inbound.ts';
import { TcpProxyListener, type TcpProxyState } from './listener.ts';

/** A bound TCP listener, for `/config_dump` and logs. */
export interface TcpListenerStatus {
  readonly name: string;
  readonly direction: string;
  readonly address: string;
  readonly port: number;
}

interface Bound {
  readonly listener: TcpProxyListener;
  readonly address: string;
  readonly port: number;
}

/** The outcome of `prepare`: what `commit` or `abort` applies. */
export interface TcpListenerPlan {
  readonly wanted: readonly Listener[];
  readonly fresh: ReadonlyMap<string, Bound>;
}

export class TcpListenerSet {
  readonly #state: TcpProxyState;
  #bound = new Map<string, Bound>();

  constructor(state: TcpProxyState) {
    this.#state = state;
  }

  /**
   * Binds the listeners of `listeners` (only those with `tcpProxy`) that are new or moved.
   * @throws ConfigError naming the listener that cannot bind; nothing stays bound then.
   */
  async prepare(listeners: readonly Listener[], version: string): Promise<TcpListenerPlan> {
    const wanted = listeners.filter((l) => l.tcpProxy !== undefined);
    const fresh = new Map<string, Bound>();
    for (const l of wanted) {
      const existing = this.#bound.get(l.name)?.listener;
      if (existing && existing.config.address === l.address && existing.config.port === l.port) continue;
      const listener = new TcpProxyListener(l, this.#state);
      try {
        fresh.set(l.name, { listener, ...(await listener.listen()) });
      } catch (err) {
        await Promise.all([...fresh.values()].map((f) => f.listener.close(0)));
        throw new ConfigError(
          [
            `Listener ${l.name}: cannot bind ${l.address ?? '127.0.0.1'}:${l.port}: ${(err as Error).message}`,
          ],
          `config version ${version}`,
        );
      }
    }
    return { wanted, fresh };
  }

  /** Closes what `prepare` bound (the version was rejected after all). */
  async abort(plan: TcpListenerPlan): Promise<void> {
    await Promise.all([...plan.fresh.values()].map((f) => f.listener.close(0)));
  }

  /** Swaps `plan` in (never throws); resolves once retired listeners have drained. */
  commit(plan: TcpListenerPlan): Promise<void> {
    const next = new Map<string, Bound>();
    const retired: TcpProxyListener[] = [];
    for (const l of plan.wanted) {
      const fresh = plan.fresh.get(l.name);
      const existing = this.#bound.get(l.name);
      if (fresh !== undefined) {
        next.set(l.name, fresh);
        if (existing !== undefined) retired.push(existing.listener);
      } else if (existing !== undefined) {
        existing.listener.setConfig(l);
        next.set(l.name, existing);
      }
    }
    for (const [name, b] of this.#bound) if (!next.has(name)) retired.push(b.listener);
    this.#bound = next;
    return Promise.all(retired.map((l) => l.close())).then(() => undefined);
  }

  /** The bound TCP listeners. */
  statuses(): TcpListenerStatus[] {
    return [...this.#bound.values()].map((b) => ({
      name: b.listener.config.name,
      direction: b.listener.config.direction ?? 'TRAFFIC_DIRECTION_UNSPECIFIED',
      address: b.address,
      port: b.port,
    }));
  }

  /** Stops every listener (open connections get up to `drainMs`, else each listener's drain period). */
  async close(drainMs?: number): Promise<void> {
    const all = [...this.#bound.values()];
    this.#bound = new Map();
    await Promise.all(all.map((b) => b.listener.close(drainMs)));
  }
}

/**
 * The `weft-tcp` handler of an HTTP listener for this config version: undefined when the
 * listener has no `inboundTcp` (such connections are then closed by DownstreamTls).
 */
export function inboundTcpHandler(
  l: Listener,
  tls: TlsSource,
): ((socket: TLSSocket, principal: string) => void) | undefined {
  if (l.inboundTcp === undefined || (l.inboundTcp.ports?.length ?? 0) === 0) return undefined;
  return new InboundTcpHandler(l, tls).handle;
}
