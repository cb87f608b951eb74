/** Which `Upgrade` values the proxy carries as WebSocket (RFC 6455 §4.1; tokens, case-insensitive). */
import { describe, expect, it } from 'vitest';
import { offersWebSocket } from '../../../sidecar/proxy/http/upgrade.ts';

describe('offersWebSocket', () => {
  it.each(['websocket', 'WebSocket', 'h2c, websocket', ' websocket ', 'websocket/13'])('takes %j', (v) => {
    expect(offersWebSocket(v)).toBe(true);
  });

  it.each([undefined, '', 'h2c', 'websockets', 'TLS/1.2'])('ignores %j', (v) => {
    expect(offersWebSocket(v)).toBe(false);
  });
});
