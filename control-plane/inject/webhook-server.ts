/**
 * The admission webhook's HTTPS listener (control plane, default port 15017 as istiod's):
 * `POST /inject` with an AdmissionReview v1 JSON body → the review (webhook.ts) as JSON.
 * TLS uses the control plane's serving certificate from the mesh CA (ca/serving.ts); the
 * MutatingWebhookConfiguration's `caBundle` is the mesh trust bundle (`weft ca bundle`).
 *
 * Errors: other paths 404, other methods 405, a body that is not `application/json` 415, larger
 * than 4 MiB 413, not JSON or not an AdmissionReview v1 request 400 (plain-text reason). Never
 * crashes on input.
 *
 * Invariants: new handshakes use the newest serving certificate (checked every `refreshMs`,
 * and the certificate renews at half-life, so it is never served expired).
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { InjectorConfig } from './config.ts';
import { AdmissionReviewError, parseAdmissionReview, review } from './webhook.ts';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  readonly address: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The current serving certificate chain (leaf first) and key, PEM. */
  readonly certificate: () => { readonly certChainPem: string; readonly keyPem: string };
  readonly config: InjectorConfig;
  readonly logger: Logger;
  /** How often to look for a renewed certificate, ms (default 30 000). */
  readonly refreshMs?: number;
}

export interface WebhookServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the HTTPS listener. @throws when the port cannot be bound. */
export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const log = options.logger.child({ component: 'inject-webhook' });
  let served = options.certificate();
  const server: Server = createServer({ cert: served.certChainPem, key: served.keyPem }, (req, res) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/inject') return send(404, 'not found\n');
    if (req.method !== 'POST') return send(405, 'method not allowed: POST an AdmissionReview\n');
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') return send(415, 'content-type must be application/json\n');
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        res.setHeader('connection', 'close');
        send(413, `body larger than ${MAX_BODY_BYTES} bytes\n`);
        res.once('finish', () => req.destroy());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (tooLarge) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        return send(400, `body: not JSON: ${(err as Error).message}\n`);
      }
      try {
        const request = parseAdmissionReview(body);
        const answer = review(request, options.config);
        log.info(
          {
            uid: request.uid,
            namespace: request.namespace,
            allowed: answer.response.allowed,
            patched: answer.response.patch !== undefined,
            reason: answer.response.status?.message,
          },
          'admission review',
        );
        send(200, JSON.stringify(answer), 'application/json');
      } catch (err) {
        if (err instanceof AdmissionReviewError) return send(400, `${err.message}\n`);
        log.error({ err }, 'admission review failed');
        send(500, 'internal error\n');
      }
    });
  });
  server.on('tlsClientError', () => {});
  const timer = setInterval(() => {
    const next = options.certificate();
    if (next.certChainPem === served.certChainPem) return;
    served = next;
    server.setSecureContext({ cert: next.certChainPem, key: next.keyPem });
    log.info('serving certificate reloaded');
  }, options.refreshMs ?? 30_000);
  timer.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.address, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    async close() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
