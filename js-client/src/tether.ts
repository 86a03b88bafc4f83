// Tether: the session, its delivery state and the choice of transport. The
// transports themselves are in websocket.ts and http.ts.

import { type Bytes, type Frame, type Payload, closeFrame, encodeBatch, encodeFrame, encoder, parseClose } from './codec'
import { backoff, order, reconnects } from './policy'
import { type Conn, websocket } from './websocket'
import { longpoll, sse, streaming } from './http'

/** Options of a Tether client. Every field is optional. */
export interface TetherOptions {
  /** Use only these transports (for example `['longpoll']`). Default: all the server offers. */
  transports?: string[]
  /** Never use these transports. */
  exclude?: string[]
  /**
   * Start on long polling, for a fast first message, and move to WebSocket
   * once a WebSocket has attached. Default false.
   */
  upgrade?: boolean
  /** How long one transport may take to attach before the next one is tried, ms. Default 5000. */
  timeout?: number
  /** The first reconnect delay, ms; it doubles per attempt, with jitter. Default 250. */
  minDelay?: number
  /** The longest reconnect delay, ms. Default 10000. */
  maxDelay?: number
  /**
   * Negotiate a new session by itself after the close codes that say so
   * (1001, 1011, 1012, 1013). Default true.
   */
  reconnect?: boolean
  /** Headers for the negotiate request, for example `Authorization`. */
  headers?: Record<string, string>
}

/** The answer to negotiate (PROTOCOL.md section 2). */
interface Negotiated {
  protocol: number
  session: string
  token: string
  transports: string[]
  heartbeatMs: number
  resumeWindowMs: number
  maxBodyBytes: number
}

/** TetherMessageEvent is dispatched for every message from the server. */
export interface TetherMessageEvent extends Event {
  /** A string for a text message; a Blob or ArrayBuffer (see binaryType) for a binary one. */
  readonly data: string | Blob | ArrayBuffer
}

/** TetherCloseEvent is dispatched once, when the session is over. */
export interface TetherCloseEvent extends Event {
  readonly code: number
  readonly reason: string
  /** True when a close frame was sent or received. */
  readonly wasClean: boolean
}

/**
 * TetherReconnectingEvent is dispatched when the connection is lost and the
 * client attaches again to the same session (code is absent), or when the
 * server closed the session with a code after which the client negotiates a
 * new one (code and reason say why).
 */
export interface TetherReconnectingEvent extends Event {
  readonly code?: number
  readonly reason?: string
}

/** TetherTransportEvent is dispatched when the transport in use changes. */
export interface TetherTransportEvent extends Event {
  readonly transport: string
}

/** TetherEventMap lists the events a Tether dispatches, by type. */
export interface TetherEventMap {
  open: Event
  message: TetherMessageEvent
  close: TetherCloseEvent
  error: Event
  reconnecting: TetherReconnectingEvent
  resumed: Event
  transport: TetherTransportEvent
}

type Handler<E> = ((this: Tether, ev: E) => any) | null

// Typed listeners, as WebSocket has.
export interface Tether {
  addEventListener<K extends keyof TetherEventMap>(
    type: K,
    listener: (this: Tether, ev: TetherEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions,
  ): void
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void
  removeEventListener<K extends keyof TetherEventMap>(
    type: K,
    listener: (this: Tether, ev: TetherEventMap[K]) => any,
    options?: boolean | EventListenerOptions,
  ): void
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void
}

const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3

const transportsByName: Record<string, (t: Tether, c: Conn) => void> = { websocket, sse, streaming, longpoll }

/**
 * Tether is a real-time connection shaped like the browser's WebSocket:
 * `new Tether(url)` instead of `new WebSocket(url)`, where url is the prefix
 * the server is mounted at (for example `/rt/`). Under it, the session
 * travels over WebSocket, server-sent events, streaming or long polling, and
 * survives cuts: messages are neither lost, duplicated nor reordered in
 * either direction.
 *
 * send() may be called from construction on: messages wait until the session
 * is attached, and are kept until the server acknowledges them.
 */
export class Tether extends EventTarget {
  static readonly CONNECTING = CONNECTING
  static readonly OPEN = OPEN
  static readonly CLOSING = CLOSING
  static readonly CLOSED = CLOSED
  declare readonly CONNECTING: 0
  declare readonly OPEN: 1
  declare readonly CLOSING: 2
  declare readonly CLOSED: 3

  /** The prefix URL the server is mounted at, with its trailing slash. */
  readonly url: string
  /** CONNECTING, OPEN (also while a cut connection is being resumed), CLOSING or CLOSED. */
  readyState = CONNECTING
  /** How binary messages are handed over: 'blob' (the default) or 'arraybuffer'. */
  binaryType: BinaryType = 'blob'
  /** The transport in use: websocket, sse, streaming or longpoll; null before the first attach. */
  transport: string | null = null
  /** The public session id; null before negotiate. */
  session: string | null = null

  onopen: Handler<Event> = null
  onmessage: Handler<TetherMessageEvent> = null
  onclose: Handler<TetherCloseEvent> = null
  onerror: Handler<Event> = null
  onreconnecting: Handler<TetherReconnectingEvent> = null
  onresumed: Handler<Event> = null
  ontransport: Handler<TetherTransportEvent> = null

  /** @internal options */ _o: TetherOptions
  /** @internal the negotiate answer */ _n?: Negotiated
  /** @internal the transports to try */ _list: string[] = []
  /** @internal index into _list of the transport tried now */ _ti = 0
  /** @internal the connection attached, or being attached */ _c?: Conn
  /** @internal the WebSocket being probed in upgrade mode */ _p?: Conn
  /** @internal upgrade tried in this session */ _up?: boolean
  /** @internal hold HTTP sends while a probe attaches */ _hold?: boolean
  /** @internal messages handed to the application in this session */ _rcv = 0
  /** @internal _rcv when an acknowledgement was last sent */ _ar = 0
  /** @internal client messages acknowledged by the server */ _acked = 0
  /** @internal unacknowledged client messages, number _acked+1 first */ _out: Payload[] = []
  /** @internal the close frame to send, with its code and reason */ _cf?: [string, number, string]
  /** @internal failures since the last attach */ _f = 0
  /** @internal failures of send requests in a row */ _pf = 0
  /** @internal a send request is in flight or waiting to be retried */ _post?: boolean
  /** @internal another send request is wanted after the one in flight */ _again?: boolean
  /** @internal since when no connection works, 0 while one does */ _lost = 0
  /** @internal reconnecting was dispatched, resumed is due */ _rc?: boolean
  /** @internal an attach that waits for the send request in flight */ _wait?: () => void
  /** @internal timers: reattach, send retry, acknowledge, heartbeat tick */ _rt?: any
  /** @internal */ _pt?: any
  /** @internal */ _at?: any
  /** @internal */ _tick?: any
  /** @internal Blob reads in flight, which keep later sends in order */ _chain?: Promise<void>

  constructor(url: string | URL, options: TetherOptions = {}) {
    super()
    const u = new URL(url, globalThis.location?.href)
    u.protocol = u.protocol.replace('ws', 'http')
    if (!u.pathname.endsWith('/')) u.pathname += '/'
    this.url = u.href
    this._o = options
    this._negotiate()
  }

  /**
   * bufferedAmount is the number of bytes of messages sent but not yet
   * acknowledged by the server.
   */
  get bufferedAmount(): number {
    return this._out.reduce((n, m) => n + (typeof m == 'string' ? encoder.encode(m).length : m.length), 0)
  }

  /**
   * send queues a message: a string is a text message; an ArrayBuffer, a
   * typed array, a DataView or a Blob is a binary message. The bytes are
   * copied. Messages are delivered in the order of send calls. After close,
   * send does nothing.
   */
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.readyState > OPEN) return
    const push = (d: typeof data | ArrayBuffer) => {
      // new Uint8Array(view) copies the bytes into a buffer of its own.
      this._out.push(
        typeof d == 'string'
          ? d
          : new Uint8Array(ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d as ArrayBuffer)),
      )
      this._flush()
    }
    if (data instanceof Blob || this._chain) this._then(async () => push(data instanceof Blob ? await data.arrayBuffer() : data))
    else push(data)
  }

  /**
   * close ends the session: the messages sent before it are delivered first,
   * then a close frame with code (1000 or 3000-4999) and reason (at most 123
   * bytes of UTF-8). The close event follows.
   */
  close(code = 1000, reason = ''): void {
    if (code != 1000 && (code < 3000 || code > 4999)) throw new RangeError('tether: invalid close code ' + code)
    if (encoder.encode(reason).length > 123) throw new SyntaxError('tether: close reason longer than 123 bytes')
    if (this.readyState > OPEN) return
    if (this._chain) return this._then(async () => this.close(code, reason))
    this._cf = [closeFrame(code, reason), code, reason]
    this.readyState = CLOSING
    if (this._c?.ok) this._flush()
    else this._end(code, reason, false)
  }

  /** @internal _then runs f after the Blob reads in flight. */
  _then(f: () => Promise<void>) {
    const p: Promise<void> = (this._chain || Promise.resolve()).then(f).finally(() => {
      if (this._chain == p) this._chain = undefined
    })
    this._chain = p
  }

  /** @internal _emit dispatches an event and calls the matching on-handler. */
  _emit(type: string, props?: object) {
    const e = Object.assign(new Event(type), props)
    const h = (this as any)['on' + type]
    try {
      h?.call(this, e)
    } catch (x) {
      setTimeout(() => {
        throw x
      })
    }
    this.dispatchEvent(e)
  }

  /** @internal _url returns the URL of an endpoint with the session's query parameters. */
  _url(path: string, q: Record<string, number>): URL {
    const u = new URL(path, this.url)
    u.search = new URLSearchParams({ session: this.session!, token: this._n!.token, ...(q as any) }) + ''
    return u
  }

  /** @internal _negotiate creates a session (PROTOCOL.md section 2). */
  async _negotiate() {
    const o = this._o
    try {
      const r = await fetch(new URL('negotiate?v=1', this.url), {
        method: 'POST',
        headers: o.headers,
        signal: AbortSignal.timeout(o.timeout ?? 5000),
      })
      if (r.status >= 400 && r.status < 500) return this._end(1008, (await r.text()).trim(), false)
      if (!r.ok) throw r.status
      const n: Negotiated = await r.json()
      if (this.readyState > OPEN) return
      // The version asked for in ?v=: a server that answers another one is
      // not one this client can talk to.
      if (n.protocol !== 1) return this._end(1002, 'unsupported protocol version', false)
      let remembered
      try {
        remembered = sessionStorage.getItem('tether:' + this.url)
      } catch {}
      this._list = order(n.transports, o, remembered)
      if (!this._list.length) return this._end(1002, 'no transport', false)
      this._n = n
      this.session = n.session
      this._ti = this._rcv = this._ar = this._acked = this._lost = 0
      this._up = this._rc = false
      this._tick = setInterval(() => this._beat(), n.heartbeatMs / 2)
      this._attach()
    } catch {
      if (this.readyState < CLOSING) this._later(() => this._negotiate())
    }
  }

  /** @internal _later calls f after the backoff delay for the next failure. */
  _later(f: () => void, delay = backoff(this._f++, this._o.minDelay, this._o.maxDelay)) {
    this._rt = setTimeout(f, delay)
  }

  /** @internal _attach attaches a connection of the transport whose turn it is. */
  _attach(probe?: boolean) {
    const name = probe ? 'websocket' : this._list[this._ti % this._list.length]
    if (name == 'websocket' && this._post) {
      // A WebSocket numbers client messages from the seq of its attach; a
      // send request in flight could have them acknowledged meanwhile. So
      // it waits for that request, and no other starts.
      this._hold = true
      this._wait = () => this._attach(probe)
      return
    }
    this._hold = !!(probe || this._p)
    const c: Conn = { name, n: this._rcv, seen: Date.now(), stop() {} }
    if (probe) this._p = c
    else this._c = c
    c.timer = setTimeout(() => this._fail(c), this._o.timeout ?? 5000)
    try {
      transportsByName[name](this, c)
    } catch {
      // new WebSocket throws where the page may not open one (mixed content, CSP).
      this._fail(c)
    }
  }

  /**
   * @internal _ok is called when c has proven itself: a WebSocket opened, a
   * stream's first bytes arrived, a long poll started (negotiate proved HTTP).
   */
  _ok(c: Conn) {
    if (c.ok || (c != this._c && c != this._p)) return
    c.ok = true
    clearTimeout(c.timer)
    if (c == this._p) {
      // The upgrade probe attached, superseding the long poll on the server.
      clearTimeout(this._rt)
      this._c?.stop()
      this._c = c
      this._p = undefined
      this._hold = false
      this._ti = this._list.indexOf(c.name)
    }
    const was = this.transport
    this.transport = c.name
    try {
      sessionStorage.setItem('tether:' + this.url, c.name)
    } catch {}
    if (this.readyState == CONNECTING) {
      this.readyState = OPEN
      this._emit('open')
    }
    // A long poll is attached at once but shows it works with its first answer.
    if (c.name != 'longpoll') this._alive(c)
    if (was && was != c.name) this._emit('transport', { transport: c.name })
    if (this._o.upgrade && !this._up && c.name == 'longpoll' && this._list.includes('websocket')) {
      this._up = true
      this._attach(true)
    }
    this._flush()
  }

  /**
   * @internal _alive is called when c carried something: the backoff starts
   * over, and a lost connection is resumed.
   */
  _alive(c: Conn) {
    if (c != this._c) return
    this._f = this._lost = 0
    if (this._rc) {
      this._rc = false
      this._emit('resumed')
    }
  }

  /**
   * @internal _fail is called when c broke, or timed out before proving
   * itself, or (ended) when a stream ended after its byte limit.
   */
  _fail(c: Conn, ended?: boolean) {
    c.stop()
    clearTimeout(c.timer)
    if (c == this._p) {
      // The upgrade failed: stay on long polling.
      this._p = undefined
      this._hold = false
      if (this._c?.parked) longpoll(this, this._c)
      return this._flush()
    }
    if (c != this._c) return
    this._c = undefined
    const n = this._n!
    // Closing: the send request in flight, which carries the close frame,
    // decides the end; without one the close frame cannot go out.
    if (this.readyState == CLOSING) return this._post || this._end(this._cf![1], this._cf![2], false)
    if (!ended) this._lost ||= Date.now()
    if (c.ok && !ended && !this._rc) {
      this._rc = true
      this._emit('reconnecting')
    }
    // The server has given up on the session by now (PROTOCOL.md 5.4).
    if (this._lost && Date.now() - this._lost > n.resumeWindowMs) return this._end(4001, 'session expired', false)
    if (!c.ok) this._ti++
    // A connection that worked is tried again after a delay; a transport that
    // did not is followed at once by the next, until all have failed.
    this._later(() => this._attach(), ended ? 0 : c.ok || this._ti % this._list.length == 0 ? undefined : 0)
  }

  /** @internal _gone is called when an attach answered 404: the session is over. */
  _gone(c: Conn) {
    // Closing, the 404 may well be the server done with the session after
    // reading the close frame: the send request decides (see _fail).
    if (c == this._c && this.readyState < CLOSING) this._end(4001, 'session expired', false)
    else this._fail(c)
  }

  /**
   * @internal _in handles one frame read on c. It returns false when the
   * transport must stop reading: c is no longer attached, or the session is over.
   */
  _in(c: Conn, [t, d]: Frame): boolean {
    if (c != this._c) return false
    c.seen = Date.now()
    if (t == 'm' || t == 'b') {
      // c.n counts the messages c carried from its attach on; those up to
      // _rcv were already read on an earlier connection.
      if (++c.n > this._rcv) {
        this._rcv++
        this._emit('message', {
          data: typeof d == 'string' || this.binaryType == 'arraybuffer' ? (d as Uint8Array).buffer || d : new Blob([d]),
        })
        if (c.name != 'longpoll') {
          if (this._rcv - this._ar >= 64) this._ack()
          else this._at ||= setTimeout(() => this._ack(), 1000)
        }
      }
    } else if (t == 'a') this._acknowledged(+d)
    else if (t == 'c') {
      const [code, reason] = parseClose(d as string)
      if (reconnects(code) && this._o.reconnect != false && this.readyState == OPEN) {
        this._stop()
        this.readyState = CONNECTING
        this._out = []
        this._emit('reconnecting', { code, reason })
        this._later(() => this._negotiate())
      } else this._end(code, reason, true)
    }
    return c == this._c
  }

  /** @internal _acknowledged drops the client messages the server has acknowledged. */
  _acknowledged(n: number) {
    for (; this._acked < n && this._out.length; this._acked++) this._out.shift()
  }

  /** @internal _ack acknowledges the messages received. */
  _ack() {
    clearTimeout(this._at)
    this._at = 0
    const c = this._c
    if (!c?.ok) return
    this._ar = this._rcv
    if (c.ws) c.ws.send('a' + this._rcv)
    else this._flush(true)
  }

  /** @internal _beat runs every half heartbeat: dead-connection detection and WebSocket heartbeats. */
  _beat() {
    const c = this._c
    const h = this._n!.heartbeatMs
    // A long poll parked for an upgrade probe hears nothing: the probe's
    // own timeout bounds the wait.
    if (!c?.ok || this._p) return
    if (Date.now() - c.seen > 2 * h) this._fail(c)
    else if (c.ws && Date.now() - c.sent! >= h / 2) c.ws.send('h'), (c.sent = Date.now())
  }

  /**
   * @internal _flush sends what waits: on a WebSocket, the messages not yet
   * written to it and the close frame; on HTTP transports, one send request
   * at a time (force: even with nothing to send, to acknowledge).
   */
  _flush(force?: boolean) {
    const c = this._c
    if (!c?.ok || this._hold) return
    const cf = this._cf
    if (c.ws) {
      for (let i = Math.max(0, c.next! - this._acked - 1); i < this._out.length; i++, c.next!++) {
        const m = this._out[i]
        c.ws.send(typeof m == 'string' ? 'm' + m : m)
      }
      c.sent = Date.now()
      if (cf) {
        c.ws.send(cf[0])
        this._end(cf[1], cf[2], true)
      }
    } else if (this._post) this._again = true
    else if (this._out.length || cf || force) this._send()
  }

  /** @internal _send makes one send request (PROTOCOL.md section 5.2). */
  async _send() {
    this._post = true
    this._again = false
    const n = this._n!
    const seq = this._acked + 1
    const frames: Bytes[] = []
    let size = 0
    for (const m of this._out) {
      const f = encodeFrame(m)
      size += f.length + 11
      if (frames.length && size > n.maxBodyBytes) break
      frames.push(f)
    }
    const cf = frames.length == this._out.length && this._cf
    if (cf) frames.push(encoder.encode(cf[0]))
    const retry = () => (this._pt = setTimeout(() => this._sent(), backoff(this._pf++, this._o.minDelay, this._o.maxDelay)))
    try {
      const r = await fetch(this._url('send', { seq, received: this._rcv }), {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: encodeBatch(frames),
        // A request lost in a silent network must not hold back the next.
        signal: AbortSignal.timeout(2 * n.heartbeatMs + (this._o.timeout ?? 5000)),
      })
      if (n != this._n || this.readyState == CLOSED) return
      const s = r.status
      if (s < 300) {
        this._pf = 0
        this._acknowledged(seq - 1 + frames.length - (cf ? 1 : 0))
        if (cf) return this._end(cf[1], cf[2], true)
        this._sent()
      } else if (s == 404) {
        // The session is gone; the downstream connection learns why (a
        // close frame, or a 404 of its own).
        if (cf) this._end(cf[1], cf[2], false)
      } else if (s == 409) this._end(4000, 'sequence gap', false)
      else if (s == 413) this._end(1009, 'message too big', false)
      else if (s == 403) this._end(1008, 'origin not allowed', false)
      else retry()
    } catch {
      if (n == this._n) retry()
    }
  }

  /** @internal _sent is called when the send request in flight is done. */
  _sent() {
    const w = this._wait
    this._post = false
    this._wait = undefined
    if (this.readyState == CLOSING && !this._c) this._end(this._cf![1], this._cf![2], false)
    else if (w) w()
    else if (this._again || this._out.length) this._flush()
  }

  /** @internal _stop stops every connection and timer of the session. */
  _stop() {
    clearTimeout(this._rt)
    clearTimeout(this._pt)
    clearTimeout(this._at)
    clearInterval(this._tick)
    for (const c of [this._c, this._p]) if (c) clearTimeout(c.timer), c.stop()
    this._c = this._p = this._n = undefined
    this._post = this._hold = false
    this._wait = undefined
  }

  /** @internal _end ends the session and dispatches close (after error when not clean). */
  _end(code: number, reason: string, wasClean: boolean) {
    if (this.readyState == CLOSED) return
    this._stop()
    this.readyState = CLOSED
    if (!wasClean) this._emit('error')
    this._emit('close', { code, reason, wasClean })
  }
}

Object.assign(Tether.prototype, { CONNECTING, OPEN, CLOSING, CLOSED })

export default Tether
