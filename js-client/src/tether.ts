// Tether: the session, its delivery state and the choice of transport. The
// transports themselves are in websocket.ts and http.ts.

import { type Bytes, type Frame, type Payload, closeFrame, encodeBatch, encodeFrame, encoder, parseClose } from './codec'
import { NO_TRANSPORT, SESSION_UNKNOWN, type TransportName, backoff, order, probes, reconnects } from './policy'
import { type Conn, websocket } from './websocket'
import { longpoll, probe, sse, streaming } from './http'

/** Options of a Tether client. Every field is optional. */
export interface TetherOptions {
  /** Use only these transports (for example `['longpoll']`). Default: all the server offers. */
  transports?: string[]
  /** Never use these transports. */
  exclude?: string[]
  /**
   * Fast connect (PROTOCOL.md section 10): start on long polling at once, for
   * a fast first message, while the better transports are probed; move to
   * the best one that works. Default true. With false, the transports are
   * tried one after another, each for up to timeout.
   */
  upgrade?: boolean
  /**
   * How long one transport may take to attach (or a probe to answer) before
   * it counts as failed, ms; also bounds negotiate and close. Default 5000.
   */
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

/**
 * TetherErrorEvent is dispatched for every failed attempt (the session goes
 * on and tries again), and before every close that is not clean (then
 * request is absent).
 */
export interface TetherErrorEvent extends Event {
  /** What failed: 'negotiate', 'attach', 'probe' or 'send'. */
  readonly request?: string
  /** The transport of the attach or probe, or the one in use for a send. */
  readonly transport?: string
  /** The HTTP status of the answer; 0 when there was none (a network error, a timeout, a WebSocket refused). */
  readonly status?: number
}

/** TetherEventMap lists the events a Tether dispatches, by type. */
export interface TetherEventMap {
  open: Event
  message: TetherMessageEvent
  close: TetherCloseEvent
  error: TetherErrorEvent
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

/** Each transport's function by name: one for every name in policy.ts's transports. */
const transportsByName: Record<TransportName, (t: Tether, c: Conn) => void> = { websocket, sse, streaming, longpoll }

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
  onerror: Handler<TetherErrorEvent> = null
  onreconnecting: Handler<TetherReconnectingEvent> = null
  onresumed: Handler<Event> = null
  ontransport: Handler<TetherTransportEvent> = null

  /** @internal options */ _o: TetherOptions
  /** @internal the negotiate answer */ _n?: Negotiated
  /** @internal the transports to try */ _list: string[] = []
  /** @internal index into _list of the transport tried now */ _ti = 0
  /** @internal the connection attached, or being attached */ _c?: Conn
  /** @internal the probe, or the attach of a transport that probed well, while long polling carries the session */ _p?: Conn
  /** @internal the transports still to probe in this round; undefined: one after another */ _probes?: string[]
  /** @internal a probe failed in this round while the connection in use worked */ _probeFailed?: boolean
  /** @internal a connection attached in this session */ _ever?: boolean
  /** @internal the WebSocket probed now is the second of the round (see _fail) */ _wsAgain?: boolean
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
  /** @internal timers: reattach, send retry, acknowledge, heartbeat tick, close, send answered 404 */ _rt?: any
  /** @internal */ _pt?: any
  /** @internal */ _at?: any
  /** @internal */ _tick?: any
  /** @internal */ _ct?: any
  /** @internal */ _gt?: any
  /** @internal Blob reads in flight, which keep later sends in order */ _chain?: Promise<void>
  /** @internal the heartbeat interval in use, ms: the negotiated one, or shorter behind a proxy that cuts idle connections */ _hb = 0
  /** @internal how long the last cut connection had been idle, ms, when it was an idle cut (see _cut); 0: none */ _idle = 0

  constructor(url: string | URL, options?: TetherOptions | null) {
    super()
    const u = new URL(url, globalThis.location?.href)
    u.protocol = u.protocol.replace('ws', 'http')
    if (!u.pathname.endsWith('/')) u.pathname += '/'
    this.url = u.href
    this._o = options ?? {} // null too: new Tether(url, null) is plain JavaScript
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
    if (!this._n) return this._end(code, reason, false)
    // The close event comes within timeout, delivered or not.
    this._ct = setTimeout(() => this._end(code, reason, false), this._o.timeout ?? 5000)
    this._flush(true)
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

  /** @internal _error dispatches error for a failed request (see TetherErrorEvent). */
  _error(request: string, transport?: string | null, status = 0) {
    this._emit('error', { request, transport, status })
  }

  /** @internal _remember keeps the transport for the next sessions in this tab. */
  _remember(name: string) {
    try {
      sessionStorage.setItem('tether:' + this.url, name)
    } catch {}
  }

  /**
   * @internal _url returns the URL of an endpoint with the session's query
   * parameters, and heartbeatMs once the interval was shortened (see _cut).
   */
  _url(path: string, q: Record<string, number>): URL {
    const u = new URL(path, this.url)
    const n = this._n!
    if (this._hb < n.heartbeatMs) q.heartbeatMs = this._hb
    u.search = new URLSearchParams({ session: this.session!, token: n.token, ...(q as any) }) + ''
    return u
  }

  /**
   * @internal _cut is called when c, which worked, was cut. Two cuts in a
   * row after about the same idle time T, shorter than the heartbeat
   * interval, show a proxy that closes idle connections: from then on the
   * heartbeat interval is T/2, asked of the server with heartbeatMs
   * (PROTOCOL.md section 10.4).
   */
  _cut(c: Conn) {
    const t = Date.now() - Math.max(c.seen, c.sent || 0)
    const p = this._idle
    this._idle = t >= 2000 && t < this._hb ? t : 0
    if (this._idle && p && Math.abs(t - p) <= Math.max(t, p) / 4) {
      this._hb = Math.max(1000, Math.floor(Math.min(t, p) / 2))
      this._idle = 0
      this._beats()
    }
  }

  /** @internal _beats (re)starts the tick of _beat, every half heartbeat. */
  _beats() {
    clearInterval(this._tick)
    this._tick = setInterval(() => this._beat(), this._hb / 2)
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
      if (!r.ok) {
        this._error('negotiate', null, r.status)
        throw 0
      }
      const n: Negotiated = await r.json()
      if (this.readyState > OPEN) return
      // The version asked for in ?v=: a server that answers another one is
      // not one this client can talk to.
      if (n.protocol !== 1) return this._end(4003, 'unsupported protocol version', false)
      let remembered
      try {
        remembered = sessionStorage.getItem('tether:' + this.url)
      } catch {}
      this._list = order(n.transports, o, remembered)
      if (!this._list.length) return this._end(NO_TRANSPORT, 'no transport', false)
      this._n = n
      this.session = n.session
      this._ti = this._rcv = this._ar = this._acked = 0
      // Since when no connection works: for a new session, since now.
      this._lost = Date.now()
      this._ever = this._rc = false
      this._hb = n.heartbeatMs
      this._idle = 0
      this._beats()
      this._connect()
    } catch (e) {
      if (e !== 0) this._error('negotiate')
      if (this.readyState < CLOSING) this._later(() => this._negotiate())
    }
  }

  /** @internal _later calls f after the backoff delay for the next failure. */
  _later(f: () => void, delay = backoff(this._f++, this._o.minDelay, this._o.maxDelay)) {
    this._rt = setTimeout(f, delay)
  }

  /**
   * @internal _connect starts a round of attaching (PROTOCOL.md section 10):
   * with fast connect, long polling at once while the other transports are
   * probed, one after another; otherwise the transport whose turn it is.
   */
  _connect() {
    const list = this._list
    this._probes = probes(list, this._o.upgrade)
    this._probeFailed = this._wsAgain = false
    const name = this._probes ? 'longpoll' : list[this._ti % list.length]
    this._attach(name)
    // A send request answered shows that long polling works, long before a
    // poll with nothing to carry is answered. The probes start then (_ok).
    if (name == 'longpoll' && !this._post) this._send()
  }

  /** @internal _attach attaches a connection of transport name, as the probe's attach with asProbe. */
  _attach(name: string, asProbe?: boolean) {
    const c: Conn = { name, n: this._rcv, seen: Date.now(), stop() {} }
    if (asProbe) this._p = c
    else this._c = c
    c.timer = setTimeout(() => this._fail(c), this._o.timeout ?? 5000)
    try {
      transportsByName[name as TransportName](this, c)
    } catch {
      // new WebSocket throws where the page may not open one (mixed content, CSP).
      this._fail(c)
    }
  }

  /**
   * @internal _probe starts the next probe of the round: a WebSocket
   * attaches and is taken once open; sse and streaming are probed without
   * attaching (see _probed).
   */
  _probe() {
    const name = !this._p && this._c && this._probes?.shift()
    if (!name) return
    if (name == 'websocket') {
      this._attach(name, true)
      if (this._p) this._p.again = this._wsAgain
      return
    }
    const c: Conn = { name, n: this._rcv, seen: Date.now(), stop() {}, probe: true }
    this._p = c
    c.timer = setTimeout(() => this._fail(c), this._o.timeout ?? 5000)
    probe(this, c)
  }

  /** @internal _probed is called when the probe c received its first bytes: the stream is not held back. */
  _probed(c: Conn) {
    if (c != this._p) return
    clearTimeout(c.timer)
    this._attach(c.name, true)
  }

  /**
   * @internal _ok is called when c has proven itself: a WebSocket opened, a
   * stream's first bytes arrived, a poll or a send request was answered.
   */
  _ok(c: Conn) {
    if (c.ok || (c != this._c && c != this._p)) return
    const carrier = this._c
    if (c.ws && c == this._p && carrier && !carrier.parked) {
      // A poll is in flight. It ends at once if the WebSocket superseded
      // it; if it reached the server after the WebSocket, it superseded the
      // WebSocket instead, and long polling goes on. So the WebSocket takes
      // over only once that poll has ended (longpoll calls _ok again).
      c.opened = true
      return
    }
    c.ok = true
    clearTimeout(c.timer)
    if (c == this._p) {
      // The probe's attach superseded long polling on the server.
      this._c?.stop()
      clearTimeout(this._c?.timer)
      this._c = c
      this._p = this._probes = undefined
      if (this._probeFailed) this._remember(c.name)
    }
    this._ever = true
    const was = this.transport
    this.transport = c.name
    if (this.readyState == CONNECTING) {
      this.readyState = OPEN
      this._emit('open')
    }
    this._alive(c)
    if (was && was != c.name) this._emit('transport', { transport: c.name })
    // Probing starts once long polling works: the poll in flight has reached
    // the server by then, and cannot supersede the WebSocket probe.
    this._probe()
    this._flush()
  }

  /**
   * @internal _alive is called when c carried something: the backoff starts
   * over, and a lost connection is resumed.
   */
  _alive(c: Conn) {
    if (c != this._c || !c.ok) return
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
    const carrier = this._c
    if (c == this._p) {
      // The probe failed: long polling goes on, and the next is probed. A
      // WebSocket that opened was superseded by a late poll: no evidence
      // against it, so it is probed again, once.
      this._p = undefined
      this._wsAgain = c.opened && !c.again
      // Superseded by our own poll: no failure to report yet.
      if (this._wsAgain) this._probes?.unshift('websocket')
      else this._error(c.probe ? 'probe' : 'attach', c.name, c.status)
      if (carrier?.ok && !this._wsAgain) {
        this._probeFailed = true
        if (!this._probes?.length) this._remember(carrier.name)
      }
      if (carrier?.parked) {
        // It heard nothing while parked: silence counts from now.
        carrier.seen = Date.now()
        longpoll(this, carrier)
      }
      this._probe()
      return this._flush()
    }
    if (c != carrier) return
    this._c = undefined
    const p = this._p
    if (p) clearTimeout(p.timer), p.stop()
    this._p = undefined
    // Closing: the send request in flight, which carries the close frame,
    // decides the end; without one the close frame cannot go out.
    if (this.readyState == CLOSING) return this._post || this._end(this._cf![1], this._cf![2], false)
    if (!ended) {
      this._lost ||= Date.now()
      if (!c.ok) this._error('attach', c.name, c.status)
      else {
        this._cut(c)
        if (!this._rc) {
          this._rc = true
          this._emit('reconnecting')
        }
      }
    }
    // The server has given up on the session by now (PROTOCOL.md 5.4).
    if (this._lost && Date.now() - this._lost > this._n!.resumeWindowMs)
      return this._ever ? this._end(4001, 'session expired', false) : this._end(NO_TRANSPORT, 'no transport', false)
    // A stream that ended at its byte limit is followed at once by the next.
    if (ended) return this._later(() => this._attach(c.name), 0)
    if (this._probes) return this._later(() => this._connect())
    if (!c.ok) this._ti++
    // A connection that worked is tried again after a delay; a transport that
    // did not is followed at once by the next, until all have failed.
    this._later(() => this._connect(), c.ok || this._ti % this._list.length == 0 ? undefined : 0)
  }

  /** @internal _gone is called when an attach or probe answered 404: the server does not know the session. */
  _gone(c: Conn) {
    c.status = 404
    // Closing, the 404 may well be the server done with the session after
    // reading the close frame: the send request decides (see _fail).
    if (c == this._c && this.readyState < CLOSING) {
      this._error('attach', c.name, 404)
      this._unknown()
    } else this._fail(c)
  }

  /**
   * @internal _unknown ends a session the server answered 404 for: 4001 once
   * the resume window has passed without a connection, 4005 before (the
   * request reached a server that does not hold the session).
   */
  _unknown() {
    const cf = this._cf
    if (cf) return this._end(cf[1], cf[2], false)
    if (this._lost && Date.now() - this._lost > this._n!.resumeWindowMs) this._end(4001, 'session expired', false)
    else this._end(SESSION_UNKNOWN, 'session unknown', false)
  }

  /**
   * @internal _in handles one frame read on c. It returns false when the
   * transport must stop reading: c is no longer attached, or the session is over.
   */
  _in(c: Conn, [t, d]: Frame): boolean {
    // An open WebSocket waiting to take over (see _ok) may carry messages
    // already: they are counted like the poll's.
    if (c != this._c && !(c == this._p && c.opened)) return false
    c.seen = Date.now()
    if (t == 'm' || t == 'b') {
      // c.n counts the messages c carried from its attach on; those up to
      // _rcv were already read on an earlier connection.
      if (++c.n > this._rcv) {
        this._rcv++
        this._emit('message', {
          data: typeof d == 'string' || this.binaryType == 'arraybuffer' ? (d as Uint8Array).buffer || d : new Blob([d]),
        })
        // A WebSocket acknowledges every 64 messages. A stream's end at its
        // byte limit acknowledges (the next attach states received), so in
        // a burst a stream costs no send request per 64 messages; only a
        // message left unacknowledged for 1 s is (PROTOCOL.md section 5.1).
        // Polls acknowledge by themselves; an acknowledgement beside them
        // (a WebSocket probe carries messages before it takes over) would
        // make the poll in flight a stale attach (PROTOCOL.md 3).
        if (c.ws && this._rcv - this._ar >= 64) this._ack()
        else if (this._c?.name != 'longpoll') this._at ||= setTimeout(() => this._ack(), 1000)
      }
    } else if (t == 'a') this._acknowledged(+d)
    else if (t == 'c') {
      const [code, reason] = parseClose(d as string)
      if (reconnects(code) && this._o.reconnect != false && this.readyState == OPEN) {
        this._stop()
        this.readyState = CONNECTING
        this.transport = null
        this._out = []
        this._emit('reconnecting', { code, reason })
        this._later(() => this._negotiate())
      } else this._end(code, reason, true)
    }
    return c == this._c || c == this._p
  }

  /** @internal _acknowledged drops the client messages the server has acknowledged. */
  _acknowledged(n: number) {
    // A WebSocket being attached numbers the client messages it will carry
    // from its seq on: until it opens they stay, even those a send request
    // had accepted meanwhile (the server drops what it already has).
    for (const c of [this._c, this._p]) if (c?.ws && !c.ok) return
    for (; this._acked < n && this._out.length; this._acked++) this._out.shift()
  }

  /** @internal _ack acknowledges the messages received. */
  _ack() {
    clearTimeout(this._at)
    this._at = 0
    const c = this._c
    if (!c?.ok || c.name == 'longpoll') return
    this._ar = this._rcv
    if (c.ws) c.ws.readyState == 1 && (c.ws.send('a' + this._rcv), (c.sent = Date.now()))
    else this._flush(true)
  }

  /** @internal _beat runs every half heartbeat: dead-connection detection and WebSocket heartbeats. */
  _beat() {
    const c = this._c
    const h = this._hb
    // A long poll parked for a probe's attach hears nothing: the attach's
    // own timeout bounds the wait.
    if (!c?.ok || c.parked) return
    if (Date.now() - c.seen > 2 * h) this._fail(c)
    else if (c.ws?.readyState == 1 && Date.now() - c.sent! >= h / 2) c.ws.send('h'), (c.sent = Date.now())
  }

  /**
   * @internal _flush sends what waits: on a WebSocket, the messages not yet
   * written to it and the close frame; on HTTP transports, one send request
   * at a time (force: even with nothing to send, to acknowledge).
   */
  _flush(force?: boolean) {
    const c = this._c
    const cf = this._cf
    if (c?.ws && c.ok) {
      // A WebSocket closed under us is no longer OPEN (1) before its close
      // event comes: what waits goes on the next connection (a send now
      // would only make the browser log an error).
      if (c.ws.readyState != 1) return
      for (let i = Math.max(0, c.next! - this._acked - 1); i < this._out.length; i++, c.next!++) {
        const m = this._out[i]
        c.ws.send(typeof m == 'string' ? 'm' + m : m)
      }
      c.sent = Date.now()
      if (cf) {
        c.ws.send(cf[0])
        this._end(cf[1], cf[2], true)
      }
    } else if (!c?.ok && !cf) return
    else if (this._post) this._again = true
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
    const transport = this._c?.name
    const retry = (status = 0) => {
      this._error('send', transport, status)
      this._pt = setTimeout(() => this._sent(), backoff(this._pf++, this._o.minDelay, this._o.maxDelay))
    }
    try {
      // Never acknowledge more than a connection being attached states: its
      // attach would arrive as a stale one (PROTOCOL.md 3).
      let received = this._rcv
      for (const c of [this._c, this._p]) if (c && !c.ok && !c.opened && !c.probe) received = Math.min(received, c.n)
      const r = await fetch(this._url('send', { seq, received }), {
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
        // An answer shows that long polling works (see _connect).
        const c = this._c
        if (c?.name == 'longpoll') this._ok(c)
        this._sent()
      } else if (s == 404) {
        // The server does not know the session. If it closed it, the
        // downstream brings the close frame at once; otherwise the request
        // reached a server without the session: no further send request,
        // and the error and the end after a grace period.
        if (cf) this._end(cf[1], cf[2], false)
        else
          this._gt = setTimeout(() => {
            this._error('send', transport, s)
            this._unknown()
          }, Math.min(2000, this._o.timeout ?? 5000))
      } else if (s == 409) this._end(4000, 'sequence gap', false)
      else if (s == 413) this._end(1009, 'message too big', false)
      else if (s == 403) this._end(1008, 'origin not allowed', false)
      else retry(s)
    } catch {
      if (n == this._n) retry()
    }
  }

  /** @internal _sent is called when the send request in flight is done. */
  _sent() {
    this._post = false
    if (this._again || this._out.length || this._cf) this._flush()
  }

  /** @internal _stop stops every connection and timer of the session. */
  _stop() {
    clearTimeout(this._rt)
    clearTimeout(this._pt)
    clearTimeout(this._at)
    clearTimeout(this._ct)
    clearTimeout(this._gt)
    clearInterval(this._tick)
    for (const c of [this._c, this._p]) if (c) clearTimeout(c.timer), c.stop()
    this._c = this._p = this._n = undefined
    this._post = false
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
