/**
 * Test harness: HTTP/2 frames written by hand (RFC 9113 §4.1, §6) and read back from a raw socket,
 * for corpus tests that must send what no well-behaved client library would.
 *
 * A frame is described as data (`FrameSpec`): a type name (or number for an unknown type), flags,
 * a stream id and a payload, either raw (`payload` hex, `size` zero bytes, `data` text) or built
 * from structured fields of its type: `headers` (a list of [name, value] pairs, each encoded as an
 * HPACK literal field without indexing, new name, no Huffman, RFC 7541 §6.2.2; the item
 * `"@request"` stands for a valid GET request's four pseudo-header fields, `{"@request": {...}}` for
 * them with some values replaced) plus `hpack` (raw HPACK bytes in hex, appended), `settings`
 * ({NAME: value}), `error` (an RFC 9113 §7 code name, for RST_STREAM and GOAWAY), `increment`
 * (WINDOW_UPDATE), `dependsOn`/`weight`/`exclusive` (PRIORITY), `lastStream` (GOAWAY). `repeat` sends the frame N times; a `FrameGroup` repeats a
 * list of frames, adding `streamStep` to every non-zero stream id on each round. Header names and
 * values and hex payloads may use `{{text*N}}` for `text` repeated N times.
 *
 * Reading: `FrameReader` splits the server's bytes into frames; `responseStatus` decodes the
 * `:status` of a response header block as nghttp2 writes it (the first field: an indexed static
 * entry, or a literal with the static name `:status` and a plain or Huffman-coded value).
 */

/** Frame type codes (RFC 9113 §6). */
export const FRAME_TYPES = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags by name (RFC 9113 §6; ACK shares END_STREAM's bit). */
export const FLAGS = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RFC 9113 §7), by value. */
export const ERROR_CODES: readonly string[] = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const SETTINGS_IDS: Readonly<Record<string, number>> = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
};

/** RFC 9113 §3.4 client connection preface. */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * One header field; `"@request"` for a valid GET's four pseudo-header fields; or
 * `{"@request": {":method": "POST", ...}}` for them with some values replaced.
 */
export type HeaderItem =
  | readonly [string, string]
  | '@request'
  | { readonly '@request': Readonly<Record<string, string>> };

/** One frame, as data (see the module comment). */
export interface FrameSpec {
  readonly type: string | number;
  readonly flags?: number | readonly string[];
  readonly stream?: number;
  readonly payload?: string;
  readonly size?: number;
  readonly data?: string;
  readonly headers?: readonly HeaderItem[];
  readonly hpack?: string;
  readonly settings?: Readonly<Record<string, number>>;
  readonly error?: string;
  readonly increment?: number;
  readonly dependsOn?: number;
  readonly weight?: number;
  readonly exclusive?: boolean;
  readonly lastStream?: number;
  readonly repeat?: number;
}

/** Frames sent `repeat` times; every non-zero stream id grows by `streamStep` per round. */
export interface FrameGroup {
  readonly repeat: number;
  readonly streamStep?: number;
  readonly frames: readonly FrameSpec[];
}

export type FrameItem = FrameSpec | FrameGroup;

/** The four pseudo-header fields `"@request"` stands for. */
export const REQUEST_PSEUDO: readonly (readonly [string, string])[] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'corpus'],
];

/** A frame header and payload (RFC 9113 §4.1). */
export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte ORed with `mask`. */
export function hpackInt(value: number, n: number, mask: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([mask | value]);
  const out = [mask | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2). */
export function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0]), hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v]);
}

/** Expands `{{text*N}}` templates. */
export function expand(text: string): string {
  return text.replace(/\{\{([\s\S]+?)\*(\d+)\}\}/g, (_, t: string, n: string) => t.repeat(Number(n)));
}

/** The HPACK block of `headers` (literals) followed by `hpackHex`. */
export function headerBlock(headers: readonly HeaderItem[] = [], hpackHex = ''): Buffer {
  const parts: Buffer[] = [];
  for (const item of headers) {
    let fields: readonly (readonly [string, string])[];
    if (item === '@request') fields = REQUEST_PSEUDO;
    else if (Array.isArray(item)) fields = [item as readonly [string, string]];
    else {
      const over = (item as { readonly '@request': Readonly<Record<string, string>> })['@request'];
      fields = REQUEST_PSEUDO.map(([n, v]) => [n, over[n] ?? v] as const);
    }
    for (const [name, value] of fields) parts.push(literal(expand(name), expand(value)));
  }
  parts.push(Buffer.from(hpackHex, 'hex'));
  return Buffer.concat(parts);
}

function typeCode(type: string | number): number {
  if (typeof type === 'number') return type;
  const code = (FRAME_TYPES as Readonly<Record<string, number>>)[type];
  if (code === undefined) throw new Error(`unknown frame type ${type}`);
  return code;
}

function flagBits(flags: FrameSpec['flags']): number {
  if (flags === undefined) return 0;
  if (typeof flags === 'number') return flags;
  let bits = 0;
  for (const f of flags) {
    const bit = (FLAGS as Readonly<Record<string, number>>)[f];
    if (bit === undefined) throw new Error(`unknown flag ${f}`);
    bits |= bit;
  }
  return bits;
}

function errorCode(name: string | undefined): number {
  if (name === undefined) return 0;
  const code = ERROR_CODES.indexOf(name);
  if (code === -1) throw new Error(`unknown error code ${name}`);
  return code;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/** The payload of `spec`: raw, or built from its type's structured fields. */
function payloadOf(spec: FrameSpec, type: number): Buffer {
  if (spec.payload !== undefined) return Buffer.from(expand(spec.payload), 'hex');
  if (spec.size !== undefined) return Buffer.alloc(spec.size);
  if (spec.data !== undefined) return Buffer.from(expand(spec.data), 'latin1');
  switch (type) {
    case FRAME_TYPES.HEADERS:
    case FRAME_TYPES.CONTINUATION:
      return headerBlock(spec.headers, spec.hpack);
    case FRAME_TYPES.SETTINGS: {
      const entries = Object.entries(spec.settings ?? {});
      const out = Buffer.alloc(entries.length * 6);
      entries.forEach(([name, value], i) => {
        out.writeUInt16BE(SETTINGS_IDS[name] ?? Number(name), i * 6);
        out.writeUInt32BE(value >>> 0, i * 6 + 2);
      });
      return out;
    }
    case FRAME_TYPES.PING:
      return Buffer.alloc(8);
    case FRAME_TYPES.RST_STREAM:
      return u32(errorCode(spec.error));
    case FRAME_TYPES.GOAWAY:
      return Buffer.concat([u32(spec.lastStream ?? 0), u32(errorCode(spec.error))]);
    case FRAME_TYPES.WINDOW_UPDATE:
      return u32(spec.increment ?? 0);
    case FRAME_TYPES.PRIORITY: {
      const out = Buffer.alloc(5);
      out.writeUInt32BE(((spec.dependsOn ?? 0) | (spec.exclusive === true ? 0x80000000 : 0)) >>> 0, 0);
      out[4] = (spec.weight ?? 16) - 1;
      return out;
    }
    default:
      return Buffer.alloc(0);
  }
}

const CONNECTION_FRAMES = new Set<number>([FRAME_TYPES.SETTINGS, FRAME_TYPES.PING, FRAME_TYPES.GOAWAY]);

/** A frame as sent, with what the client did to its stream. */
export interface EncodedFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly bytes: Buffer;
}

function encodeOne(spec: FrameSpec, streamOffset: number): EncodedFrame {
  const type = typeCode(spec.type);
  const base = spec.stream ?? (CONNECTION_FRAMES.has(type) || type === FRAME_TYPES.WINDOW_UPDATE ? 0 : 1);
  const stream = base === 0 ? 0 : base + streamOffset;
  const flags = flagBits(spec.flags);
  return { type, flags, stream, bytes: frame(type, flags, stream, payloadOf(spec, type)) };
}

function isGroup(item: FrameItem): item is FrameGroup {
  return (item as FrameGroup).frames !== undefined;
}

/** Every frame of `items`, repeats expanded, in order. */
export function encodeFrames(items: readonly FrameItem[]): EncodedFrame[] {
  const out: EncodedFrame[] = [];
  for (const item of items) {
    if (isGroup(item)) {
      for (let round = 0; round < item.repeat; round++) {
        for (const spec of item.frames) {
          const one = encodeOne(spec, round * (item.streamStep ?? 0));
          for (let i = 0; i < (spec.repeat ?? 1); i++) out.push(one);
        }
      }
    } else {
      const one = encodeOne(item, 0);
      for (let i = 0; i < (item.repeat ?? 1); i++) out.push(one);
    }
  }
  return out;
}

/**
 * Streams the server owes an answer (a response or a reset) once `frames` are processed: those
 * the client ended (END_STREAM on HEADERS or DATA) after completing their header block (END_HEADERS
 * on HEADERS or CONTINUATION), did not reset itself, and opened in increasing order (a HEADERS on
 * an id below one already used is for a closed stream, RFC 9113 §5.1.1, which a server may ignore).
 */
export function awaitedStreams(frames: readonly EncodedFrame[]): Set<number> {
  const complete = new Set<number>();
  const ended = new Set<number>();
  const ignored = new Set<number>();
  let highest = 0;
  for (const f of frames) {
    if (f.stream === 0) continue;
    if (f.type === FRAME_TYPES.HEADERS) {
      if (f.stream < highest) ignored.add(f.stream);
      highest = Math.max(highest, f.stream);
    }
    if (
      (f.type === FRAME_TYPES.HEADERS || f.type === FRAME_TYPES.CONTINUATION) &&
      (f.flags & FLAGS.END_HEADERS) !== 0
    )
      complete.add(f.stream);
    if ((f.type === FRAME_TYPES.HEADERS || f.type === FRAME_TYPES.DATA) && (f.flags & FLAGS.END_STREAM) !== 0)
      ended.add(f.stream);
    if (f.type === FRAME_TYPES.RST_STREAM) ignored.add(f.stream);
  }
  return new Set([...complete].filter((id) => ended.has(id) && !ignored.has(id)));
}

/** A frame received. */
export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** Splits a byte stream into frames (after the server's side has no preface but its SETTINGS). */
export class FrameReader {
  #buffered: Buffer = Buffer.alloc(0);

  /** Adds `chunk`; returns the frames it completed. */
  push(chunk: Buffer): ReceivedFrame[] {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const out: ReceivedFrame[] = [];
    let at = 0;
    while (this.#buffered.length - at >= 9) {
      const length = this.#buffered.readUIntBE(at, 3);
      if (this.#buffered.length - at < 9 + length) break;
      out.push({
        type: this.#buffered[at + 3] as number,
        flags: this.#buffered[at + 4] as number,
        stream: this.#buffered.readUInt32BE(at + 5) & 0x7fffffff,
        payload: this.#buffered.subarray(at + 9, at + 9 + length),
      });
      at += 9 + length;
    }
    this.#buffered = this.#buffered.subarray(at);
    return out;
  }
}

/** RFC 7541 Appendix B codes of the characters a status code is made of. */
const HUFFMAN_DIGITS: readonly (readonly [number, number, string])[] = [
  [0b00000, 5, '0'],
  [0b00001, 5, '1'],
  [0b00010, 5, '2'],
  [0b011001, 6, '3'],
  [0b011010, 6, '4'],
  [0b011011, 6, '5'],
  [0b011100, 6, '6'],
  [0b011101, 6, '7'],
  [0b011110, 6, '8'],
  [0b011111, 6, '9'],
];

/** Decodes a Huffman-coded string of digits; undefined when anything else is in it. */
function huffmanDigits(bytes: Buffer): string | undefined {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  let at = 0;
  for (;;) {
    const rest = bits.slice(at);
    if (rest.length < 8 && /^1*$/.test(rest)) return out; // EOS padding (RFC 7541 §5.2)
    const hit = HUFFMAN_DIGITS.find(
      ([code, n]) => rest.length >= n && parseInt(rest.slice(0, n), 2) === code,
    );
    if (hit === undefined) return undefined;
    out += hit[2];
    at += hit[1];
  }
}

/** Static table entries 8-14 (RFC 7541 Appendix A): `:status` with a value. */
const STATIC_STATUS: Readonly<Record<number, number>> = {
  8: 200,
  9: 204,
  10: 206,
  11: 304,
  12: 400,
  13: 404,
  14: 500,
};

/** The `:status` of a response header block, or undefined when it cannot be read. */
export function responseStatus(block: Buffer): number | undefined {
  let at = 0;
  while (at < block.length && ((block[at] as number) & 0xe0) === 0x20) {
    // dynamic table size updates (RFC 7541 §6.3) may come first
    at++;
    while (
      at < block.length &&
      ((block[at - 1] as number) & 0x1f) === 0x1f &&
      ((block[at] as number) & 0x80) !== 0
    )
      at++;
  }
  const first = block[at];
  if (first === undefined) return undefined;
  if ((first & 0x80) !== 0) return STATIC_STATUS[first & 0x7f];
  // a literal field with the static name 8 (:status): with (0x40), without (0x00) or never (0x10) indexing
  const nameIndex = (first & 0x40) !== 0 ? first & 0x3f : first & 0x0f;
  if (nameIndex < 8 || nameIndex > 14) return undefined;
  const lenByte = block[at + 1];
  if (lenByte === undefined) return undefined;
  const length = lenByte & 0x7f;
  const value = block.subarray(at + 2, at + 2 + length);
  const text = (lenByte & 0x80) !== 0 ? huffmanDigits(value) : value.toString('latin1');
  return text === undefined ? undefined : Number(text);
}
