// A fake Tether server behind a fake fetch, for node's test runner: enough of
// PROTOCOL.md (negotiate, longpoll, sse, streaming, send) to drive the
// client's session logic, with faults injected on demand.

import { type Bytes, type Frame, type Payload, encodeBatch, encodeFrame, encoder, parseBatch, parseClose } from '../../src/codec'

export interface Fake {
  fetch: typeof fetch
  /** Messages the server sent, in order (number i+1 at index i). */
  out: Payload[]
  /** Messages the server accepted from the client, in order. */
  in: Payload[]
  /** The close frame the client sent, if any. */
  closed?: [number, string]
  /** Every request, as "METHOD path". */
  log: string[]
  /** Sends a message to the client. */
  send(m: Payload): void
  /** Closes the session from the server with a close frame. */
  close(code: number, reason: string): void
  /** Fault injection: called per request; return a Response, an Error to throw, or nothing to proceed. */
  // 'after' (send): accept the messages, then fail as if the answer were lost.
  // 'truncate' (longpoll): cut the body in the middle of its last frame.
  // 'hang': no answer at all, until the request is aborted.
  fault?: (path: string, q: URLSearchParams, count: number) => Response | Error | 'after' | 'truncate' | 'hang' | void
  /**
   * A WebSocket class served by this fake, to install as
   * globalThis.WebSocket: it attaches as PROTOCOL.md 4.2 says (text frames,
   * seq and received), supersedes a waiting long poll and is superseded
   * (4009) by a later attach. A fault returning an Error for path
   * 'websocket' refuses the handshake.
   */
  WebSocket: unknown
}

export const fake = (offer = ['longpoll'], heartbeatMs = 1000, resumeWindowMs = 5000): Fake => {
  let waiters: (() => void)[] = []
  let sessions = 0
  let acked = 0
  let closeFrame: string | undefined
  let gone = false
  const counts: Record<string, number> = {}
  // attaches counts downstream attaches: a poll waiting ends, and an open
  // WebSocket closes with 4009, when a later one supersedes it.
  let attaches = 0
  const sockets = new Set<{ push(): void; supersede(): void }>()
  const wake = () => {
    const w = waiters
    waiters = []
    w.forEach((f) => f())
  }
  const f: Fake = {
    out: [],
    in: [],
    log: [],
    send(m) {
      f.out.push(m)
      wake()
      sockets.forEach((s) => s.push())
    },
    close(code, reason) {
      closeFrame = 'c' + code + (reason ? ' ' + reason : '')
      wake()
    },
    fetch: (async (input: string | URL, init: RequestInit = {}) => {
      const u = new URL(input)
      const path = u.pathname.replace(/^\/rt\//, '')
      const q = u.searchParams
      const method = init.method || 'GET'
      f.log.push(method + ' ' + path)
      counts[path] = (counts[path] || 0) + 1
      const fault = f.fault?.(path, q, counts[path])
      if (fault instanceof Error) throw fault
      if (fault instanceof Response) return fault
      if (fault == 'hang')
        return new Promise<Response>((_, rej) => init.signal?.addEventListener('abort', () => rej(new DOMException('aborted', 'AbortError'))))
      if (path == 'negotiate') {
        sessions++
        f.out = []
        f.in = []
        acked = 0
        closeFrame = undefined
        gone = false
        return Response.json({
          protocol: 1,
          session: 'S' + sessions,
          token: 'T' + sessions,
          transports: offer,
          heartbeatMs,
          resumeWindowMs,
          maxMessageBytes: 65536,
          maxBodyBytes: 1 << 20,
          future: 'ignored',
        })
      }
      // The header, when there is one, stands in for the parameter (PROTOCOL.md section 3).
      const token = (init.headers as Record<string, string> | undefined)?.['Tether-Token'] ?? q.get('token')
      if (token != 'T' + sessions || gone) return new Response('unknown session', { status: 404 })
      const received = +q.get('received')!
      if (received) acked = Math.max(acked, received)
      const gen = path == 'send' || q.get('probe') ? 0 : ++attaches
      if (gen) sockets.forEach((s) => s.supersede()), wake()
      if (path == 'send') {
        const body = new Uint8Array(await new Response(init.body).arrayBuffer())
        const frames: Frame[] = []
        parseBatch(body, 0, (fr) => (frames.push(fr), true))
        let seq = +q.get('seq')!
        if (seq > f.in.length + 1) return new Response('sequence gap', { status: 409 })
        for (const [t, d] of frames) {
          if (t == 'c') f.closed = parseClose(d as string)
          else if (t == 'm' || t == 'b') {
            if (seq++ > f.in.length) f.in.push(d)
          }
        }
        if (f.closed) gone = true
        if (fault == 'after') throw new TypeError('connection reset after the server read the request')
        return new Response(null, { status: 204 })
      }
      // A downstream attach: frames from received+1, or wait for some.
      const frames = async (): Promise<Bytes> => {
        const deadline = Date.now() + heartbeatMs
        while (received >= f.out.length && !closeFrame && Date.now() < deadline && gen == attaches) {
          await new Promise<void>((res, rej) => {
            const t = setTimeout(res, deadline - Date.now())
            waiters.push(() => (clearTimeout(t), res()))
            init.signal?.addEventListener('abort', () => rej(new DOMException('aborted', 'AbortError')))
          })
        }
        const fs = f.out.slice(received).map(encodeFrame)
        if (closeFrame) fs.push(encoder.encode(closeFrame)), (gone = true)
        if (!fs.length) fs.push(encoder.encode('h'))
        return encodeBatch(fs)
      }
      if (path == 'longpoll') {
        const body = await frames()
        return new Response(fault == 'truncate' ? body.subarray(0, body.length - 1) : body, { headers: { 'content-type': 'application/octet-stream' } })
      }
      return new Response('no such transport here', { status: 404 })
    }) as typeof fetch,
    WebSocket: class {
      readyState = 0
      protocol = ''
      binaryType = 'blob'
      onopen: (() => void) | null = null
      onmessage: ((e: { data: string }) => void) | null = null
      onclose: ((e: { code: number }) => void) | null = null
      constructor(url: string) {
        const u = new URL(url)
        const q = u.searchParams
        f.log.push('GET websocket')
        counts.websocket = (counts.websocket || 0) + 1
        const fault = f.fault?.('websocket', q, counts.websocket)
        let sent = +q.get('received')!
        let next = +q.get('seq')!
        const socket = {
          push: () => {
            for (; this.readyState == 1 && sent < f.out.length; sent++) {
              const m = f.out[sent]
              this.onmessage?.({ data: typeof m == 'string' ? 'm' + m : 'B' + btoa(String.fromCharCode(...m)) })
            }
          },
          supersede: () => this._end(4009),
        }
        setTimeout(() => {
          if (fault instanceof Error || q.get('token') != 'T' + sessions || gone) return this._end(1006)
          ++attaches
          sockets.forEach((s) => s.supersede())
          wake()
          sockets.add(socket)
          this._socket = socket
          this.readyState = 1
          this.onopen?.()
          socket.push()
        })
        this.send = (frame: string | Uint8Array) => {
          if (this.readyState != 1) return
          const d = typeof frame == 'string' ? frame : new TextDecoder().decode(frame)
          if (d[0] == 'm') {
            if (next++ > f.in.length) f.in.push(d.slice(1))
            // Acknowledged at once, as a server that read it would in time.
            setTimeout(() => this.readyState == 1 && this.onmessage?.({ data: 'a' + f.in.length }))
          } else if (d[0] == 'c') {
            f.closed = parseClose(d.slice(1))
            gone = true
            this._end(1000)
          }
        }
      }
      send: (frame: string | Uint8Array) => void
      _socket?: { push(): void; supersede(): void }
      /** _end closes the socket from the server's side with code. */
      _end(code: number) {
        if (this.readyState > 1) return
        this.readyState = 3
        if (this._socket) sockets.delete(this._socket)
        setTimeout(() => this.onclose?.({ code }))
      }
      close() {
        this._end(1000)
      }
    },
  }
  return f
}
