// Tether: the WebSocket-shaped session an application uses, and the choice
// of transport under it. The transports (websocket.ts, http.ts) reach the
// session only through conn.ts's Host, which the session is (no wrapper: its
// internal members are Host's); what resume needs to lose nothing is
// delivery.ts's Delivery.

import { type Bytes, type Frame, type Payload, closeFrame, encodeBatch, encodeFrame, encoder, parseClose } from './codec'
import type { Conn, Host, Transport } from './conn'
import { Delivery, ackEvery, payloadBytes, streamAckBytes } from './delivery'
import { Heartbeat } from './heartbeat'
import { longpoll, probe, sse, streaming } from './http'
import { type TransportName, backoff, order, probes, protocolVersion, reconnects, withDefaults } from './policy'
import { websocket } from './websocket'

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
  /**
   * The first delay between rounds of attempts (to negotiate, to attach
   * again after a cut, to retry a send request), ms; it doubles per failed
   * round, with jitter. Default 250.
   */
  minDelay?: number
  /** The longest delay between rounds of attempts, ms. Default 10000. */
  maxDelay?: number
  /**
   * Negotiate a new session by itself after the close codes that say so
   * (1001, 1011, 1012, 1013, and 4006: the cluster node that held the
   * session is gone). Default true.
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
  maxMessageBytes: number
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
 * TetherReconnectingEvent is dispatched when the server closed the session
 * with a code after which the client negotiates a new session by itself
 * (1001, 1011, 1012, 1013, 4006; see the reconnect option). open follows once the
 * new session is attached. A lost connection is not this: see resuming.
 */
export interface TetherReconnectingEvent extends Event {
  /** The close code the server sent. */
  readonly code: number
  /** The close reason the server sent. */
  readonly reason: string
}

/** TetherTransportEvent is dispatched when the transport in use changes. */
export interface TetherTransportEvent extends Event {
  readonly transport: string
}

/**
 * TetherErrorEvent is dispatched for every failed attempt (the session goes
 * on and tries again), for a message refused after send returned (see
 * MessageTooBigError), and before every close that is not clean (then
 * request is absent).
 */
export interface TetherErrorEvent extends Event {
  /** What failed: 'negotiate', 'attach', 'probe' or 'send'. */
  readonly request?: string
  /** The transport of the attach or probe, or the one in use for a send. */
  readonly transport?: string
  /** The HTTP status of the answer; 0 when there was none (a network error, a timeout, a WebSocket refused). */
  readonly status?: number
  /** The MessageTooBigError of a message refused after send returned; absent otherwise. */
  readonly error?: Error
}

/**
 * TetherEventMap lists the events a Tether dispatches, by type. resuming:
 * the connection was lost and the client attaches again to the same
 * session; resumed: it is attached again, nothing lost.
 */
export interface TetherEventMap {
  open: Event
  message: TetherMessageEvent
  close: TetherCloseEvent
  error: TetherErrorEvent
  resuming: Event
  resumed: Event
  reconnecting: TetherReconnectingEvent
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

/**
 * MessageTooBigError is thrown by send for a message larger than the
 * server's maxMessageBytes (PROTOCOL.md section 2; a string counts its
 * UTF-8 bytes): the message is not sent and the session goes on, as with the
 * Go client's ErrMessageTooBig. Its name is 'MessageTooBigError'. The limit
 * comes with the negotiate answer: a message sent before it, found too big
 * then, is dropped and reported by an error event whose error is this.
 */
export class MessageTooBigError extends RangeError {
  /** The size of the message, bytes. */
  readonly size: number
  /** The server's limit, maxMessageBytes. */
  readonly limit: number
  constructor(size: number, limit: number) {
    super(`tether: message too big: ${size} bytes, limit ${limit}`)
    this.size = size
    this.limit = limit
  }
}
MessageTooBigError.prototype.name = 'MessageTooBigError'

const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3

/** unsupportedVersion is the reason of close 4003 for a server that does not speak protocolVersion, and its negotiate's 400 body (PROTOCOL.md section 2). */
const unsupportedVersion = 'unsupported protocol version'

/**
 * reason returns the message of r when r is one of Tether's error answers (a
 * text/plain body of one line ending in a line feed, at most 123 bytes
 * before it: a close reason as it is), or else 'HTTP ' and its status: a
 * proxy's page is never a reason (PROTOCOL.md 10.5).
 */
const reason = async (r: Response) => {
  const m = /^text\/plain/.test(r.headers.get('content-type')!) && /^(.+)\n$/.exec(await r.text())
  return m && payloadBytes(m[1]) < 124 ? m[1] : 'HTTP ' + r.status
}

/** halt stops c, if any, and its attach timeout. */
const halt = (c?: Conn) => (clearTimeout(c?._attachTimer), c?._stop())

/** Each transport's function by name: one for every name in policy.ts's transports. */
const transportsByName: Record<TransportName, Transport> = { websocket, sse, streaming, longpoll }

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
  declare static readonly CONNECTING: 0
  declare static readonly OPEN: 1
  declare static readonly CLOSING: 2
  declare static readonly CLOSED: 3
  declare readonly CONNECTING: 0
  declare readonly OPEN: 1
  declare readonly CLOSING: 2
  declare readonly CLOSED: 3

  /** The prefix URL the server is mounted at, with its trailing slash. */
  readonly url: string
  // The public fields start with their defaults on the prototype (see below).
  /** CONNECTING, OPEN (also while a cut connection is being resumed), CLOSING or CLOSED. */
  declare readyState: number
  /** How binary messages are handed over: 'blob' (the default) or 'arraybuffer'. */
  declare binaryType: BinaryType
  /** The transport in use: websocket, sse, streaming or longpoll; null before the first attach. */
  declare transport: string | null
  /** The public session id; null before negotiate. */
  declare session: string | null

  declare onopen: Handler<Event>
  declare onmessage: Handler<TetherMessageEvent>
  declare onclose: Handler<TetherCloseEvent>
  declare onerror: Handler<TetherErrorEvent>
  declare onresuming: Handler<Event>
  declare onresumed: Handler<Event>
  declare onreconnecting: Handler<TetherReconnectingEvent>
  declare ontransport: Handler<TetherTransportEvent>

  /** @internal The options, with the defaults filled in. */
  private readonly _options: ReturnType<typeof withDefaults<TetherOptions>>
  /** @internal The negotiate answer of the session; undefined before it and once the session is over. */
  private _negotiated?: Negotiated
  /** @internal The server's maxMessageBytes, from the last negotiate answer; undefined before the first. */
  private _maxMessageBytes?: number
  /** @internal The delivery state of the session. */
  private _delivery = new Delivery()
  /** @internal The transports to try, in order (set by _begin). */
  private _transports!: string[]
  /** @internal Whose turn it is, tried one after another: an index into _transports, modulo its length (set by _begin). */
  private _turn!: number
  /** @internal The connection attached, or being attached. */
  private _conn?: Conn
  /** @internal The probe, or the attach of a transport that probed well, while long polling carries the session. */
  private _candidate?: Conn
  /** @internal The transports still to probe in this round; undefined: one after another. */
  private _toProbe?: string[]
  /** @internal A probe failed in this round while the connection in use worked. */
  private _probeFailed?: boolean
  /** @internal The WebSocket probed now is the round's second try of it (see _failed). */
  private _probeWebSocketAgain?: boolean
  /**
   * @internal A connection attached in this session: true; false: none yet;
   * 0: none since the session fell back to websocket alone (see _endUnknown).
   */
  private _everAttached?: boolean | 0
  /** @internal close() was called: the code and reason of the close frame to send. */
  private _closing?: [code: number, reason: string]
  /** @internal Failed rounds since the last attach: the backoff's attempt. */
  private _failures = 0
  /** @internal Failed send requests in a row. */
  private _sendFailures = 0
  /** @internal A send request is in flight or waiting to be retried. */
  private _sending?: boolean
  /** @internal Another send request is wanted after the one in flight. */
  private _sendAgain?: boolean
  /** @internal Since when no connection works, ms since the epoch; 0 while one does (set by _begin). */
  private _lostSince!: number
  /** @internal resuming was dispatched, resumed is due. */
  private _resuming?: boolean
  /**
   * @internal Upgrade rounds scheduled since the session last moved to a
   * connection: the backoff's attempt. Set by _proven, before any round.
   */
  private declare _upgradeRounds: number
  /** @internal The next round of attempts (or negotiate, or an upgrade round: see _probeNext). */
  private _roundTimer?: ReturnType<typeof setTimeout>
  /** @internal The retry of a failed send request. */
  private _sendRetryTimer?: ReturnType<typeof setTimeout>
  /** @internal The end of the session after a send request answered 404. */
  private _unknownTimer?: ReturnType<typeof setTimeout>
  /** @internal The bound of close(). */
  private _closeTimer?: ReturnType<typeof setTimeout>
  /** @internal Blob reads in flight, which keep later sends in order. */
  private _blobReads?: Promise<void>
  /** @internal The heartbeat of the session: its interval and its tick. */
  private _heartbeat?: Heartbeat

  constructor(url: string | URL, options?: TetherOptions | null) {
    super()
    const u = new URL(url, globalThis.location?.href)
    u.protocol = u.protocol.replace('ws', 'http')
    if (!u.pathname.endsWith('/')) u.pathname += '/'
    this.url = u.href
    this._options = withDefaults(options) // null too: new Tether(url, null) is plain JavaScript
    this._negotiate()
  }

  /** @internal The number of the last message received (the session is its transports' Host). */
  get _received(): number {
    return this._delivery._received
  }

  /**
   * bufferedAmount is the number of bytes of messages sent but not yet
   * acknowledged by the server.
   */
  get bufferedAmount(): number {
    return this._delivery._bytes
  }

  /**
   * send queues a message: a string is a text message; an ArrayBuffer, a
   * typed array, a DataView or a Blob is a binary message. The bytes are
   * copied. Messages are delivered in the order of send calls. After close,
   * send does nothing. It throws a MessageTooBigError, and the session goes
   * on, for a message larger than the server's limit.
   */
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.readyState > OPEN) return
    const limit = this._maxMessageBytes
    // A UTF-16 code unit takes at most 3 bytes of UTF-8: a short string needs no count.
    if (limit != null && !(typeof data == 'string' && data.length * 3 <= limit)) {
      // A string has no byteLength: its UTF-8 bytes.
      const size = data instanceof Blob ? data.size : ((data as ArrayBufferView).byteLength ?? payloadBytes(data as string))
      if (size > limit) throw new MessageTooBigError(size, limit)
    }
    const push = (d: typeof data | ArrayBuffer) => {
      // A view of the bytes (an ArrayBuffer has no buffer nor byteOffset:
      // offset 0), then slice() copies them into a buffer of their own.
      const v = d as ArrayBufferView
      const m = typeof d == 'string' ? d : new Uint8Array(v.buffer || d, v.byteOffset, v.byteLength).slice()
      // Checked now if the limit was not known at the send call.
      if (limit != null || this._fits(m)) {
        this._delivery._queue(m)
        this._flush()
      }
    }
    if (data instanceof Blob || this._blobReads) this._afterBlobReads(async () => push(data instanceof Blob ? await data.arrayBuffer() : data))
    else push(data)
  }

  /**
   * close ends the session: the messages sent before it are delivered first,
   * then a close frame with code (1000 or 3000-4999) and reason (at most 123
   * bytes of UTF-8). The close event follows.
   */
  close(code = 1000, reason = ''): void {
    if (code != 1000 && (code < 3000 || code > 4999)) throw new RangeError('tether: invalid close code ' + code)
    if (payloadBytes(reason) > 123) throw new SyntaxError('tether: close reason longer than 123 bytes')
    if (this.readyState > OPEN) return
    if (this._blobReads) return this._afterBlobReads(async () => this.close(code, reason))
    this._closing = [code, reason]
    this.readyState = CLOSING
    if (!this._negotiated) return this._end(code, reason)
    // The close event comes within timeout, delivered or not.
    this._closeTimer = setTimeout(() => this._end(code, reason), this._options.timeout)
    this._flush(true)
  }

  /** @internal _afterBlobReads runs f after the Blob reads in flight. */
  private _afterBlobReads(f: () => Promise<void>) {
    const p: Promise<void> = (this._blobReads || Promise.resolve()).then(f).finally(() => {
      if (this._blobReads == p) this._blobReads = undefined
    })
    this._blobReads = p
  }

  /**
   * @internal _fits reports whether m is within the server's limit, true
   * while the limit is not known. A message sent before the limit was known
   * and over it is dropped by the caller: an error event reports it here.
   */
  private _fits(m: Payload): boolean {
    const limit = this._maxMessageBytes
    if (limit == null) return true
    const size = payloadBytes(m)
    if (size <= limit) return true
    this._emit('error', { request: 'send', error: new MessageTooBigError(size, limit) })
    return false
  }

  /**
   * @internal The event types addEventListener was called for. Only these
   * are dispatched: a dispatch is a call into the browser for every
   * message, which an application that uses only the on-handlers (as
   * WebSocket code does) does not need.
   */
  private _listened = new Set<string>()

  /** addEventListener adds a listener, as EventTarget's does (see the typed overloads above). */
  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    this._listened.add(type)
    super.addEventListener(type, listener, options)
  }

  /**
   * @internal _emit calls the matching on-handler h and dispatches an event
   * to the listeners. A message passes its handler: building its name costs
   * more per message than the rest of the dispatch.
   */
  private _emit(type: string, props?: object, h: Handler<any> = (this as any)['on' + type]) {
    // Set one by one: Object.assign onto a browser object costs several times more, per message.
    const e: any = new Event(type)
    for (const k in props) e[k] = (props as any)[k]
    try {
      h?.call(this, e)
    } catch (x) {
      setTimeout(() => {
        throw x
      })
    }
    if (this._listened.has(type)) this.dispatchEvent(e)
  }

  /** @internal _error dispatches error for a failed request (see TetherErrorEvent). */
  private _error(request: string, transport?: string | null, status = 0) {
    this._emit('error', { request, transport, status })
  }

  /** @internal _remember keeps the transport for the next sessions in this tab. */
  private _remember(name: string) {
    try {
      sessionStorage.setItem('tether:' + this.url, name)
    } catch {}
  }

  /**
   * @internal _url returns the URL of an endpoint with the session's query
   * parameters, and heartbeatMs once the interval was shortened (see
   * Heartbeat). The token is among them unless the request carries it in
   * its header (see _headers).
   */
  private _url(path: string, query: Record<string, number>): URL {
    const u = new URL(path, this.url)
    const asked = this._heartbeat!._asked
    if (asked) query.heartbeatMs = asked
    u.search = new URLSearchParams({ session: this.session!, ...(this._headers(path) ? {} : { token: this._negotiated!.token }), ...(query as any) }) + ''
    return u
  }

  /**
   * @internal _headers returns the headers of a fetch of endpoint path: the
   * session token in Tether-Token, on a same-origin request, which keeps it
   * out of URLs that proxies and servers log (PROTOCOL.md section 3). A
   * WebSocket cannot carry it, and a cross-origin request would need a
   * preflight for it, every time: for those, nothing (the token is in the URL).
   */
  private _headers(path: string): Record<string, string> | undefined {
    if (path != 'websocket' && new URL(this.url).origin == globalThis.location?.origin) return { 'Tether-Token': this._negotiated!.token }
  }

  /** @internal _negotiate creates a session (PROTOCOL.md section 2); a failed attempt is an error event, and another follows. */
  private async _negotiate() {
    const o = this._options
    let status = 0
    try {
      const r = await fetch(new URL('negotiate?v=' + protocolVersion, this.url), {
        method: 'POST',
        headers: o.headers,
        signal: AbortSignal.timeout(o.timeout),
      })
      status = r.status
      if (status >= 400 && status < 500) {
        const m = await reason(r)
        // A server that does not speak this version, as one answering another (below).
        return this._end(status == 400 && m == unsupportedVersion ? 4003 : 1008, m)
      }
      if (r.ok) {
        const n: Negotiated = await r.json()
        // The version asked for in ?v=: a server that answers another one is
        // not one this client can talk to (the Go client's
        // ErrUnsupportedProtocol). An answer without a session or token is
        // malformed, as in the Go client's parseNegotiation: a failed attempt.
        if (n.protocol !== protocolVersion) return this._end(4003, unsupportedVersion)
        if (n.session && n.token) return this._begin(n)
      }
    } catch {}
    this._error('negotiate', null, status)
    if (this.readyState < CLOSING) this._retryLater(() => this._negotiate())
  }

  /** @internal _begin starts the session of the negotiate answer n. */
  private _begin(n: Negotiated) {
    if (this.readyState > OPEN) return
    let remembered
    try {
      remembered = sessionStorage.getItem('tether:' + this.url)
    } catch {}
    this._transports = order(n.transports, this._options, remembered)
    if (!this._transports.length) return this._end(4004, 'no transport')
    this._negotiated = n
    this.session = n.session
    this._maxMessageBytes = n.maxMessageBytes
    // The messages sent before the limit was known.
    this._delivery._keepUnsent((m) => this._fits(m))
    this._turn = 0
    // Since when no connection works: for a new session, since now.
    this._lostSince = Date.now()
    this._everAttached = this._resuming = false
    this._heartbeat = new Heartbeat(n.heartbeatMs, () => this._heartbeatTick())
    this._connect()
  }

  /**
   * @internal _expired reports whether no connection has worked for longer
   * than the resume window: the server has given up on the session by now
   * (PROTOCOL.md 5.4).
   */
  private _expired() {
    return this._lostSince && Date.now() - this._lostSince > this._negotiated!.resumeWindowMs
  }

  /**
   * @internal _retryLater calls f after the backoff delay for the next
   * failed round, instead of the round it had been asked for before, if any
   * (an upgrade round waiting when the connection breaks).
   */
  private _retryLater(f: () => void, delay = backoff(this._failures++, this._options.minDelay, this._options.maxDelay)) {
    clearTimeout(this._roundTimer)
    this._roundTimer = setTimeout(f, delay)
  }

  /**
   * @internal _connect starts a round of attaching (PROTOCOL.md section 10):
   * with fast connect, long polling at once while the other transports are
   * probed, one after another; otherwise the transport whose turn it is.
   */
  private _connect() {
    const list = this._transports
    this._toProbe = probes(list, this._options.upgrade)
    this._probeFailed = this._probeWebSocketAgain = false
    const name = this._toProbe ? 'longpoll' : list[this._turn % list.length]
    this._attach(name)
    // A send request answered shows that long polling works, long before a
    // poll with nothing to carry is answered. The probes start then (_proven).
    if (name == 'longpoll' && !this._sending) this._sendRequest()
  }

  /** @internal _open makes a connection of transport name (with probe, a probe) and starts its timeout. */
  private _open(name: string, probe?: boolean): Conn {
    const d = this._delivery
    const c: Conn = { _name: name, _probe: probe, _carried: d._received, _lastHeard: Date.now(), _nextSeq: d._seq, _stop() {} }
    c._attachTimer = setTimeout(() => this._failed(c), this._options.timeout)
    return c
  }

  /** @internal _attach attaches a connection of transport name; asCandidate: beside the one attached (see _candidate). */
  private _attach(name: string, asCandidate?: boolean) {
    const c = this._open(name)
    if (asCandidate) this._candidate = c
    else this._conn = c
    try {
      transportsByName[name as TransportName](c, this as unknown as Host)
    } catch {
      // new WebSocket throws where the page may not open one (mixed content, CSP).
      this._failed(c)
    }
  }

  /**
   * @internal _probeNext starts the next probe of the round: a WebSocket
   * attaches and is taken once open; sse and streaming are probed without
   * attaching (see _probed). At the end of a round that leaves the session
   * on a transport after the best (PROTOCOL.md 10.2, step 4), it schedules
   * another round, of the transports before it in the server's order, after
   * a backoff delay that starts over once the session moves to another
   * connection. A cut replaces the wait by its own round (_retryLater),
   * _stop clears it, and it starts nothing once close() was called.
   */
  private _probeNext() {
    const c = this._conn
    if (this._candidate || !c) return
    const name = this._toProbe?.shift()
    if (name == 'websocket') this._attach(name, true)
    else if (name) probe((this._candidate = this._open(name, true)), this as unknown as Host)
    else if (this._toProbe) {
      this._toProbe = undefined
      const all = probes(order(this._negotiated!.transports, this._options))!
      // Those before c in the server's order; all of them for long polling,
      // which is not among them (indexOf -1 becomes the largest length).
      const better = all.slice(0, all.indexOf(c._name) >>> 0)
      if (better.length)
        this._retryLater(() => {
          if (!this._closing) {
            // It follows a failure: the transport it moves the session to is
            // remembered (see _proven), as the one in use if it fails.
            this._toProbe = better
            this._probeFailed = true
            this._probeNext()
          }
        }, backoff(this._upgradeRounds++, 4000, 64000))
    }
  }

  /** @internal _probed: the probe c received its first bytes, so the stream is not held back: it attaches. */
  _probed(c: Conn) {
    if (c != this._candidate) return
    clearTimeout(c._attachTimer)
    this._attach(c._name, true)
  }

  /**
   * @internal _polls reports whether the long poll c polls again (see
   * Host.polls). Parked, it lets a WebSocket that opened meanwhile take over.
   */
  _polls(c: Conn): boolean {
    const p = this._candidate
    if (c == this._conn && !(c._parked = !!p && !p._probe)) return true
    if (c._parked && p?._opened) this._proven(p)
    return false
  }

  /**
   * @internal _proven is called when c has proven itself: a WebSocket opened, a
   * stream's first bytes arrived, a poll or a send request was answered. A
   * probe never proves itself (see _probed).
   */
  private _proven(c: Conn) {
    if (c._proven || c._probe || (c != this._conn && c != this._candidate)) return
    const carrier = this._conn
    if (c._write && c == this._candidate && carrier && !carrier._parked) {
      // A poll is in flight. It ends at once if the WebSocket superseded
      // it; if it reached the server after the WebSocket, it superseded the
      // WebSocket instead, and long polling goes on. So the WebSocket takes
      // over only once that poll has ended (see _polls).
      c._opened = true
      return
    }
    c._proven = true
    clearTimeout(c._attachTimer)
    if (c == this._candidate) {
      // The candidate's attach superseded long polling on the server.
      halt(carrier)
      this._conn = c
      this._candidate = undefined
      this._toProbe = []
      if (this._probeFailed) this._remember(c._name)
    }
    this._everAttached = true
    this._upgradeRounds = 0
    const was = this.transport
    this.transport = c._name
    if (this.readyState == CONNECTING) {
      this.readyState = OPEN
      this._emit('open')
    }
    this._heard(c)
    if (was && was != c._name) this._emit('transport', { transport: c._name })
    // Probing starts once long polling works: the poll in flight has reached
    // the server by then, and cannot supersede the WebSocket probe.
    this._probeNext()
    this._flush()
  }

  /**
   * @internal _heard is called when c carried something: the backoff starts
   * over, and a lost connection is resumed.
   */
  private _heard(c: Conn) {
    if (c != this._conn || !c._proven) return
    this._failures = this._lostSince = 0
    if (this._resuming) {
      this._resuming = false
      this._emit('resumed')
    }
  }

  /**
   * @internal _failed is called when c broke, or timed out before proving
   * itself, or (ended) when a stream ended after its byte limit.
   */
  private _failed(c: Conn, ended?: boolean) {
    halt(c)
    const carrier = this._conn
    if (c == this._candidate) {
      // The probe failed: long polling goes on, and the next is probed. A
      // WebSocket that opened was superseded by a late poll: no evidence
      // against it, so it is probed again, once.
      this._candidate = undefined
      // The flag is set while the WebSocket probed is the second try (one
      // candidate at a time): its failure clears it.
      this._probeWebSocketAgain = c._opened && !this._probeWebSocketAgain
      // Superseded by our own poll: no failure to report yet.
      if (this._probeWebSocketAgain) this._toProbe?.unshift('websocket')
      else this._error(c._probe ? 'probe' : 'attach', c._name, c._status)
      if (carrier?._proven && !this._probeWebSocketAgain) {
        this._probeFailed = true
        if (!this._toProbe?.length) this._remember(carrier._name)
      }
      if (carrier?._parked) {
        // It heard nothing while parked: silence counts from now.
        carrier._lastHeard = Date.now()
        carrier._parked = false
        transportsByName[carrier._name as TransportName](carrier, this as unknown as Host)
      }
      this._probeNext()
      return this._flush()
    }
    if (c != carrier) return
    const p = this._candidate
    // A stream superseded by a candidate's attach parks, as a long poll
    // does (see _polls): starting the next response could supersede it.
    if (ended && p && !p._probe) return (c._parked = true), p._opened && this._proven(p)
    this._conn = undefined
    halt(p)
    this._candidate = undefined
    // Closing: the send request in flight, which carries the close frame,
    // decides the end; without one the close frame cannot go out.
    const closing = this._closing
    if (this.readyState == CLOSING) return this._sending || this._end(...closing!)
    if (!ended) {
      this._lostSince = this._lostSince || Date.now()
      if (!c._proven) this._error('attach', c._name, c._status)
      else {
        // How long it had carried nothing: an idle cut may show a proxy's idle timeout.
        this._heartbeat!._cut(Date.now() - Math.max(c._lastHeard, c._lastWritten || 0))
        if (!this._resuming) {
          this._resuming = true
          this._emit('resuming')
        }
      }
    }
    if (this._expired())
      return this._everAttached
        ? this._end(4001, 'session expired')
        : this._everAttached === 0
          ? this._end(4005, 'session unknown')
          : this._end(4004, 'no transport')
    // A stream that ended at its byte limit is followed at once by the next.
    if (ended) return this._retryLater(() => this._attach(c._name), 0)
    if (this._toProbe) return this._retryLater(() => this._connect())
    if (!c._proven) this._turn++
    // A connection that worked is tried again after a delay; a transport that
    // did not is followed at once by the next, until all have failed.
    this._retryLater(() => this._connect(), c._proven || this._turn % this._transports.length == 0 ? undefined : 0)
  }

  /**
   * @internal _gone is called when an attach or probe answered 404: the
   * server does not know the session. early: the request was made before
   * the session first attached.
   */
  _gone(c: Conn, early: boolean) {
    c._status = 404
    // Closing, the 404 may well be the server done with the session after
    // reading the close frame: the send request decides (see _failed).
    if (c == this._conn && this.readyState < CLOSING) {
      this._error('attach', c._name, c._status)
      this._endUnknown(early)
    } else this._failed(c)
  }

  /**
   * @internal _endUnknown ends a session the server answered 404 for: 4001
   * once the resume window has passed without a connection, 4005 before
   * (the request reached a server that does not hold the session).
   *
   * Unless the request was made before the session first attached (early):
   * that is the evidence of a balancer that spreads the session's requests
   * over servers that share no sessions. A WebSocket is one connection, so
   * one server: the session falls back to websocket alone, attached again
   * as after a cut (nothing is lost or duplicated: the server that holds
   * the session drops by seq what it already has). Once per session, while
   * websocket is among several transports in use. The answer to a send
   * request in flight is ignored, as after a new negotiate (a copy of the
   * negotiate answer stands for it): a 204 changes nothing the WebSocket's
   * attach does not, a 404 ends nothing. If no WebSocket attaches within
   * the resume window, the session ends with 4005 (see _failed).
   */
  private _endUnknown(early?: boolean) {
    const closing = this._closing
    const list = this._transports
    if (closing) return this._end(...closing)
    if (early && list[1] && list.includes('websocket')) {
      this._everAttached = 0
      this._sending = false
      this._transports = ['websocket']
      this._negotiated = { ...this._negotiated! }
      this._drop()
      this._retryLater(() => this._connect(), 0)
    } else if (this._expired()) this._end(4001, 'session expired')
    else this._end(4005, 'session unknown')
  }

  /**
   * @internal _frame handles one frame read on c. It returns false when the
   * transport must stop reading: c is no longer attached, or the session is over.
   */
  _frame(c: Conn, [type, data]: Frame): boolean {
    // An open WebSocket waiting to take over (see _proven) may carry messages
    // already: they are counted like the poll's.
    if (c != this._conn && !(c == this._candidate && c._opened)) return false
    const d = this._delivery
    if (type == 'm' || type == 'b') {
      if (d._isNew(++c._carried, data.length)) {
        this._emit(
          'message',
          { data: typeof data == 'string' || this.binaryType == 'arraybuffer' ? (data as Uint8Array).buffer || data : new Blob([data]) },
          this.onmessage,
        )
        // A WebSocket acknowledges every 64 messages; a stream, attached
        // with acks=1 (no byte limit), every streamAckBytes through send,
        // at no request per 64 messages. Both acknowledge the end of a burst
        // (PROTOCOL.md section 5.1). Polls acknowledge by themselves; an
        // acknowledgement beside them (a WebSocket probe carries messages
        // before it takes over) would make the poll in flight a stale
        // attach (PROTOCOL.md 3).
        if (c._write ? d._unreported >= ackEvery : c._name != 'longpoll' && d._unreportedBytes >= streamAckBytes) this._sendAck()
        else if (this._conn?._name != 'longpoll') d._ackLater(() => this._sendAck(), this._heartbeat!._interval)
      }
    } else if (type == 'a') this._acknowledged(+data)
    else if (type == 'c') {
      const [code, reason] = parseClose(data as string)
      if (reconnects(code) && this._options.reconnect != false && this.readyState == OPEN) {
        // A new session: what the old one had not delivered is dropped.
        this._stop()
        this.readyState = CONNECTING
        this.transport = null
        this._delivery = new Delivery()
        this._emit('reconnecting', { code, reason })
        this._retryLater(() => this._negotiate())
      } else this._end(code, reason, true)
    }
    return c == this._conn || c == this._candidate
  }

  /** @internal _acknowledged drops the client messages up to number n, which the server has acknowledged. */
  private _acknowledged(n: number): true | void {
    // A WebSocket being attached numbers the client messages it will carry
    // from its seq on: until it opens they stay, even those a send request
    // had accepted meanwhile (the server drops what it already has). It
    // returns true then: the messages are kept.
    for (const c of [this._conn, this._candidate]) if (c?._write && !c._proven) return true
    this._delivery._acknowledge(n)
  }

  /** @internal _sendAck acknowledges the messages received. */
  private _sendAck() {
    const d = this._delivery
    d._cancelAck()
    const c = this._conn
    if (!c?._proven || c._name == 'longpoll') return
    const received = d._acknowledging()
    if (c._write) c._write('a' + received)
    else this._flush(true)
  }

  /** @internal _heartbeatTick runs every half heartbeat: dead-connection detection and WebSocket heartbeats. */
  private _heartbeatTick() {
    const c = this._conn
    const h = this._heartbeat!._interval
    // A long poll parked for a probe's attach hears nothing: the attach's
    // own timeout bounds the wait.
    if (!c?._proven || c._parked) return
    if (Date.now() - c._lastHeard > 2 * h) this._failed(c)
    else if (c._write && Date.now() - c._lastWritten! >= h / 2) c._write('h')
  }

  /**
   * @internal _flush sends what waits: on a WebSocket, the messages not yet
   * written to it and the close frame; on HTTP transports, one send request
   * at a time (force: even with nothing to send, to acknowledge).
   */
  private _flush(force?: boolean) {
    const c = this._conn
    const closing = this._closing
    const d = this._delivery
    if (c?._write && c._proven) {
      // A socket no longer open writes nothing: what waits goes on the next connection.
      for (const m of d._from(c._nextSeq)) {
        if (!c._write(typeof m == 'string' ? 'm' + m : m)) return
        c._nextSeq++
      }
      if (closing && c._write(closeFrame(...closing))) this._end(...closing, true)
    } else if (!c?._proven && !closing) return
    else if (this._sending) this._sendAgain = true
    else if (d._unacked.length || closing || force) this._sendRequest()
  }

  /** @internal _sendRequest makes one send request (PROTOCOL.md section 5.2). */
  private async _sendRequest() {
    this._sending = true
    this._sendAgain = false
    const n = this._negotiated!
    const o = this._options
    const d = this._delivery
    const seq = d._seq
    const frames: Bytes[] = []
    let size = 0
    for (const m of d._unacked) {
      const f = encodeFrame(m)
      size += f.length + 11
      // At most 64 KiB of messages (or one message), as the Go client:
      // each request answered counts, even over a short-lived connection.
      if (frames.length && size > Math.min(n.maxBodyBytes, 65536)) break
      frames.push(f)
    }
    // The number of messages carried, without the close frame.
    const carried = frames.length
    const closing = carried == d._unacked.length && this._closing
    if (closing) frames.push(encoder.encode(closeFrame(...closing)))
    const transport = this._conn?._name
    const early = !this._everAttached
    const retry = (status = 0) => {
      this._error('send', transport, status)
      this._sendRetryTimer = setTimeout(() => this._sendDone(), backoff(this._sendFailures++, o.minDelay, o.maxDelay))
    }
    try {
      // Never acknowledge more than a connection being attached states: its
      // attach would arrive as a stale one (PROTOCOL.md 3).
      let received = d._received
      for (const c of [this._conn, this._candidate]) if (c && !c._proven && !c._opened && !c._probe) received = Math.min(received, c._carried)
      const body = encodeBatch(frames)
      const r = await fetch(this._url('send', { seq, received }), {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', ...this._headers('send') },
        body,
        // A request lost in a silent network must not hold back the next.
        signal: AbortSignal.timeout(2 * n.heartbeatMs + o.timeout),
      })
      if (n != this._negotiated || this.readyState == CLOSED) return
      const s = r.status
      // Only 204 accepts the messages: a 200 is a page (PROTOCOL.md 10.5).
      if (s == 204) {
        this._sendFailures = 0
        const kept = this._acknowledged(seq - 1 + carried)
        if (closing) return this._end(...closing, true)
        // An answer shows that long polling works (see _connect).
        const c = this._conn
        if (c?._name == 'longpoll') this._proven(c)
        this._sendDone(kept)
      } else if (s == 404) {
        // The server does not know the session. If it closed it, the
        // downstream brings the close frame at once; otherwise the request
        // reached a server without the session: no further send request,
        // and the error and the end (or the fall back: see _endUnknown) after
        // a grace period.
        if (closing) this._end(...closing)
        else
          this._unknownTimer = setTimeout(() => {
            this._error('send', transport, s)
            this._endUnknown(early)
          }, Math.min(2000, o.timeout))
      } else if (s == 409) this._end(4000, 'sequence gap')
      // A body too big, for the server or a proxy in front: half as much
      // at once from now on in this session; a message alone: an error
      // event, and the end.
      else if (s == 413 && carried > 1) (n.maxBodyBytes = body.length >> 1), this._sendRequest()
      else if (s == 413) this._error('send', transport, s), this._end(1009, 'message too big')
      else if (s == 403) this._end(1008, await reason(r))
      else retry(s)
    } catch {
      if (n == this._negotiated) retry()
    }
  }

  /**
   * @internal _sendDone is called when the send request in flight is done;
   * kept: answered, but its messages kept for a WebSocket being attached
   * (see _acknowledged), which sending them again at once would not change.
   */
  private _sendDone(kept?: true | void) {
    this._sending = false
    // Again also for an acknowledgement alone, asked for while this one was in flight.
    if (this._sendAgain || (!kept && this._delivery._unacked.length) || this._closing) this._flush(this._sendAgain)
  }

  /** @internal _stop stops every connection and timer of the session. */
  private _stop() {
    clearTimeout(this._roundTimer)
    clearTimeout(this._sendRetryTimer)
    clearTimeout(this._closeTimer)
    this._heartbeat?._stop()
    this._delivery._cancelAck()
    this._drop()
    this._negotiated = undefined
    this._sending = false
  }

  /**
   * @internal _drop stops the connection and the candidate and lets them
   * go, and the end after a send request answered 404 that was due.
   */
  private _drop() {
    clearTimeout(this._unknownTimer)
    halt(this._conn)
    halt(this._candidate)
    this._conn = this._candidate = undefined
  }

  /** @internal _end ends the session and dispatches close (after error when not clean). */
  private _end(code: number, reason: string, wasClean = false) {
    if (this.readyState == CLOSED) return
    this._stop()
    this.readyState = CLOSED
    if (!wasClean) this._emit('error')
    this._emit('close', { code, reason, wasClean })
  }
}

// The states, on the class and its instances, as WebSocket has them; the
// defaults of the public fields on the prototype, as WebSocket has its
// attributes there: an instance gets its own once it sets one.
for (const o of [Tether, Tether.prototype]) Object.assign(o, { CONNECTING, OPEN, CLOSING, CLOSED })
Object.assign(Tether.prototype, {
  readyState: CONNECTING,
  binaryType: 'blob',
  transport: null,
  session: null,
  onopen: null,
  onmessage: null,
  onclose: null,
  onerror: null,
  onresuming: null,
  onresumed: null,
  onreconnecting: null,
  ontransport: null,
})

export default Tether
