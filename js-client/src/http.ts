// The HTTP downstream transports: longpoll (one batch per response), sse
// (text/event-stream, one batch per event) and streaming
// (multipart/x-mixed-replace, one batch per part), each asked for in compact
// framing (PROTOCOL.md section 4.6) and read in whichever framing the server
// answers with. Client messages go up in send requests (see tether.ts).

import { compact, encoder, indexOf, malformed, parseBatch, parseCompact, textFrame } from './codec'
import type { Conn, Host } from './conn'

/**
 * get starts a GET of path with c's attach parameters, to be cancelled by
 * c._stop. It resolves to nothing when the server answered 404 (host._gone
 * was told, with whether the request was made before the session first
 * attached).
 */
const get = async (c: Conn, host: Host, path: string): Promise<Response | void> => {
  const a = new AbortController()
  const early = !host._everAttached
  c._stop = () => a.abort()
  // A stream asks for no byte limit: the client acknowledges as it reads
  // (see streamAckBytes).
  const r = await fetch(host._url(path, c._probe ? { received: host._received, probe: 1 } : { received: (c._carried = host._received), compact: 1, ...(path != 'longpoll' && { acks: 1 }) }), {
    signal: a.signal,
    cache: 'no-store',
    headers: host._headers(path),
  })
  c._status = r.status
  if (r.status == 404) return host._gone(c, early)
  // A poll that reached the server after a request acknowledging more
  // (PROTOCOL.md 3): only that poll is refused; the next one is not.
  if (r.status == 409 && path == 'longpoll') return r
  // Every caller catches it as a failed attempt (c._status says which),
  // as a 200 that is none of the transports' answers: a captive portal's
  // page, or a login page a redirect led to (PROTOCOL.md 10.5).
  if (!r.ok || !/^(ap|text\/e|mu)/.test(r.headers.get('content-type')!)) throw 0
  return r
}

/** join returns the bytes of a followed by those of b. */
const join = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  if (!a.length) return b
  const j = new Uint8Array(a.length + b.length)
  j.set(a)
  j.set(b, a.length)
  return j
}

/**
 * longpoll attaches c as a chain of long polls, each acknowledging with its
 * received. A poll's body is read as it arrives and each frame handed over
 * at once, so a poll cut short keeps what arrived (the next poll's received
 * says so). A poll answered with frames proves the transport (an empty
 * answer is a poll superseded). While a probe's attach is under way it polls
 * no more (a poll would supersede it); it parks, and the session calls
 * longpoll again if that attach fails.
 */
export const longpoll = async (c: Conn, host: Host) => {
  try {
    while (host._polls(c)) {
      const r = await get(c, host, 'longpoll')
      if (!r) return
      if (r.status == 409) continue
      const parse = compact(r) ? parseCompact : parseBatch
      const rd = r.body!.getReader()
      let buf: Uint8Array = new Uint8Array()
      for (;;) {
        const { done, value } = await rd.read()
        c._lastHeard = Date.now()
        if (done) break
        host._proven(c)
        host._heard(c)
        buf = join(buf, value)
        const i = parse(buf, 0, (f) => host._frame(c, f))
        if (i < 0) return c._stop()
        buf = buf.subarray(i)
      }
      host._heard(c)
      if (buf.length) malformed()
    }
  } catch {
    host._failed(c)
  }
}

/**
 * stream attaches c as one streaming response and hands feed every chunk.
 * The first bytes (the prelude) prove the transport; a response that ends
 * is followed by the next one at once. feed returns false to stop.
 */
const stream = async (c: Conn, host: Host, path: string, feed: (p: Uint8Array, r: Response) => boolean) => {
  try {
    const r = await get(c, host, path)
    if (!r) return
    const rd = r.body!.getReader()
    for (;;) {
      const { done, value } = await rd.read()
      // A response that ends before any byte proved nothing: a failed attempt.
      if (done) return host._failed(c, c._proven)
      c._lastHeard = Date.now()
      host._proven(c)
      if (!feed(value, r)) return c._stop()
    }
  } catch {
    host._failed(c)
  }
}

/**
 * probe asks for a stream with probe=1 (PROTOCOL.md section 10): the server
 * answers with the prelude and a heartbeat and never attaches it. Its first
 * bytes show that no proxy holds the stream back (a probe never proves
 * itself: see Host._proven); the probe then stops.
 */
export const probe = (c: Conn, host: Host) => stream(c, host, c._name, () => (host._probed(c), false))

/**
 * sse attaches c over server-sent events, read from a fetch body: one frame
 * per event, or in compact framing frames separated by U+001E.
 */
export const sse = (c: Conn, host: Host) => {
  const d = new TextDecoder()
  let buf = ''
  let data: string | undefined
  stream(c, host, 'sse', (p, r) => {
    const lines = (buf += d.decode(p, { stream: true })).split(/\r\n|\r|\n/)
    buf = lines.pop()!
    for (const l of lines) {
      if (!l) {
        if (data != null) for (const f of compact(r) ? data.split('\x1e') : [data]) if (!host._frame(c, textFrame(f))) return false
        data = undefined
      } else if (l.startsWith('data:')) {
        const v = l.slice(l[5] == ' ' ? 6 : 5)
        data = data == null ? v : data + '\n' + v
      }
    }
    return true
  })
}

/**
 * streaming attaches c over a multipart/x-mixed-replace response, one batch
 * per part, each read by its Content-Length.
 */
export const streaming = (c: Conn, host: Host) => {
  let buf: Uint8Array = new Uint8Array()
  let i = 0
  let end = -1
  let delim: Uint8Array
  stream(c, host, 'streaming', (p, r) => {
    delim ||= encoder.encode('--' + /boundary="?([^";]+)/.exec(r.headers.get('content-type')!)![1])
    // The chunk joins what is left of the last one, if anything is.
    buf = join(buf.subarray(i), p)
    if (end >= 0) end -= i
    i = 0
    for (;;) {
      if (end < 0) {
        // Skip to the end of the next part's headers and read its length.
        const j = indexOf(buf, delim, i)
        const k = j < 0 ? -1 : indexOf(buf, encoder.encode('\r\n\r\n'), j)
        if (k < 0) return true
        const n = /content-length:\s*(\d+)/i.exec(String.fromCharCode(...buf.subarray(j, k)))
        if (!n) malformed()
        i = k + 4
        end = i + +n[1]
      }
      if (end > buf.length) return true
      const part = buf.subarray(i, end)
      const e = (compact(r) ? parseCompact : parseBatch)(part, 0, (f) => host._frame(c, f))
      if (e < 0) return false
      if (e < part.length) malformed()
      i = end
      end = -1
    }
  })
}
