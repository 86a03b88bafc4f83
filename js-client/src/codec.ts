// The frame codec of PROTOCOL.md section 4: frames, batches and the base64
// forms. The client only ever writes raw frames (m, b) and control frames;
// it reads all four message forms.

/** A message payload: text, or the bytes of a binary message. */
export type Payload = string | Bytes

/** Bytes that own their buffer (never a SharedArrayBuffer). */
export type Bytes = Uint8Array<ArrayBuffer>

/**
 * Frame is one decoded frame: its type and payload. The base64 forms are
 * decoded on the way in, so the type is one of m (text), b (binary),
 * a (acknowledgement), h (heartbeat) or c (close); b carries bytes, the
 * others carry text.
 */
export type Frame = [type: string, data: Payload]

export const encoder = new TextEncoder()
// ignoreBOM: a text message may well start with U+FEFF.
export const decoder = new TextDecoder('utf-8', { ignoreBOM: true })

/** malformed throws the error of a frame or batch that breaks PROTOCOL.md section 4. */
export function malformed(): never {
  throw Error('tether: malformed frame')
}

/** fromBase64 decodes standard base64 (RFC 4648 section 4). */
export const fromBase64 = (s: string): Bytes => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))

/**
 * textFrame decodes a frame carried as text: a WebSocket text message or a
 * server-sent event. It throws on an unknown frame type.
 */
export const textFrame = (s: string): Frame => {
  const t = s[0]
  const d = s.slice(1)
  if (t == 'M') return ['m', decoder.decode(fromBase64(d))]
  if (t == 'B') return ['b', fromBase64(d)]
  if (t == 'b') return ['b', encoder.encode(d)]
  if (t == 'a' ? !/^(0|[1-9]\d*)$/.test(d) : t == 'h' ? d : !t || !'mc'.includes(t)) malformed()
  return [t, d]
}

/** bytesFrame decodes a frame held in bytes (one frame of a batch). */
export const bytesFrame = (p: Uint8Array): Frame => (p[0] == 98 ? ['b', p.slice(1)] : textFrame(decoder.decode(p)))

/**
 * parseClose splits the payload of a close frame into code and reason.
 */
export const parseClose = (d: string): [code: number, reason: string] => {
  const i = d.indexOf(' ')
  const code = +(i < 0 ? d : d.slice(0, i))
  if (!(code >= 1000 && code <= 4999)) malformed()
  return [code, i < 0 ? '' : d.slice(i + 1)]
}

/**
 * parseBatch reads the complete frames of a batch (PROTOCOL.md section 4.1)
 * from p, starting at offset i, and hands each to fn. It returns the offset
 * after the last complete frame: it stops at a frame not yet wholly in p and
 * at a byte that cannot start a length prefix, so that a caller reading a
 * stream can wait for more, and a caller holding a whole body checks that the
 * offset is p.length. It returns -1 as soon as fn returns false, and throws
 * on a length prefix that is malformed.
 */
export const parseBatch = (p: Uint8Array, i: number, fn: (f: Frame) => boolean): number => {
  for (;;) {
    let j = i
    let n = 0
    while (p[j] > 47 && p[j] < 58) n = n * 10 + p[j++] - 48
    if (j == i || j == p.length) return i
    if (p[j] != 58 || j - i > 10 || !n || p[i] == 48) malformed()
    if (++j + n > p.length) return i
    if (!fn(bytesFrame(p.subarray(j, j + n)))) return -1
    i = j + n
  }
}

/**
 * parseCompact reads a compact batch (PROTOCOL.md section 4.6: each frame
 * after its length in unsigned LEB128) as parseBatch reads a batch, except
 * that a malformed length throws before any frame is handed over.
 *
 * It finds the complete frames first. When none is binary and the text is
 * all ASCII (byte offsets are then string offsets), it decodes them in one
 * TextDecoder call: per frame, a decode costs far more than a slice of a
 * string, and a burst of short messages is mostly that cost.
 */
export const parseCompact = (p: Uint8Array, i: number, fn: (f: Frame) => boolean): number => {
  const bounds: number[] = [] // start and end of each complete frame
  let end = i
  let binary = false
  scan: for (;;) {
    let j = end
    let n = 0
    let c: number
    do {
      if (j == p.length) break scan
      c = p[j]
      n += (c & 127) * 2 ** (7 * (j++ - end))
    } while (c > 127 && j - end < 5)
    if (c > 127 || !n || (!c && j - end > 1)) malformed()
    if (j + n > p.length) break
    bounds.push(j, j + n)
    binary ||= p[j] == 98
    end = j + n
  }
  const s = binary || !bounds.length ? '' : decoder.decode(p.subarray(i, end))
  const ascii = s.length == end - i
  for (let k = 0; k < bounds.length; k += 2) {
    const a = bounds[k]
    const b = bounds[k + 1]
    if (!fn(ascii ? textFrame(s.slice(a - i, b - i)) : bytesFrame(p.subarray(a, b)))) return -1
  }
  return end
}

/** compact reports whether r is in compact framing (its Content-Type says compact=1). */
export const compact = (r: Response): boolean => /;\s*compact=1/.test(r.headers.get('content-type')!)

/** encodeFrame returns the bytes of the frame that carries message m. */
export const encodeFrame = (m: Payload): Bytes => {
  if (typeof m == 'string') return encoder.encode('m' + m)
  const f = new Uint8Array(m.length + 1)
  f[0] = 98
  f.set(m, 1)
  return f
}

/** encodeBatch joins frames into one batch. */
export const encodeBatch = (frames: Bytes[]): Bytes => {
  const parts = frames.flatMap((f) => [encoder.encode(f.length + ':'), f])
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let i = 0
  for (const p of parts) out.set(p, i), (i += p.length)
  return out
}

/** closeFrame returns the text of a close frame. */
export const closeFrame = (code: number, reason: string): string => 'c' + code + (reason ? ' ' + reason : '')

/**
 * indexOf returns the offset of the first occurrence of pat in p at or after
 * from, or -1.
 */
export const indexOf = (p: Uint8Array, pat: Uint8Array, from: number): number => {
  outer: for (let i = from; i + pat.length <= p.length; i++) {
    for (let k = 0; k < pat.length; k++) if (p[i + k] != pat[k]) continue outer
    return i
  }
  return -1
}
