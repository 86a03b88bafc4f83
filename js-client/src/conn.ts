// What a transport and the session know of each other: Conn, one connection
// of a transport, and Host, the calls a transport makes back to the session
// it serves. The transports (websocket.ts, http.ts) import this file and the
// codec, never the session (tether.ts), so the imports have no cycle.
// Their members are internal and, like every internal name in the client,
// start with _: the build shortens those names (build.mjs).

import type { Bytes, Frame } from './codec'

/**
 * Conn is one connection attached, or being attached, to the session, or a
 * probe. The session makes it and keeps the bookkeeping fields; the
 * transport fills in _stop, and _write when it carries messages upward.
 */
export interface Conn {
  /** The transport name. */
  readonly _name: string
  /** A probe (PROTOCOL.md section 10): shows the transport works, never attaches. */
  readonly _probe?: boolean
  /**
   * The number of the last server message this connection carried, counting
   * from the received count its attach stated (the messages up to the
   * session's received count were read on an earlier connection).
   */
  _carried: number
  /** When something last arrived, ms since the epoch. */
  _lastHeard: number
  /** When something was last written (_write), ms since the epoch. */
  _lastWritten?: number
  /** The number the next client message written on this connection has (PROTOCOL.md section 3, seq). */
  _nextSeq: number
  /** Set once the connection proved itself: attached and working. */
  _proven?: boolean
  /** The attach (or probe) timeout. */
  _attachTimer?: ReturnType<typeof setTimeout>
  /** longpoll: stopped polling while a probe's attach is under way (see Host._polls). */
  _parked?: boolean
  /** The HTTP status of the failed request, for the error event; 0 or absent: no answer. */
  _status?: number
  /** websocket, attached as a probe: open, and waiting for the poll in flight to end before it takes over. */
  _opened?: boolean
  /** _stop abandons the connection. Calling it again does nothing. */
  _stop(): void
  /**
   * _write sends one frame upward (a text frame, or the bytes of a binary
   * message) and reports whether it was written: false once the connection
   * is no longer open. Only a transport that carries client messages (a
   * WebSocket) has it; the others go up in send requests.
   */
  _write?(frame: string | Bytes): boolean
}

/**
 * Host is what a transport may ask of, and tell, the session it serves: the
 * whole surface between them. Every call names the connection it is about;
 * the session ignores calls about a connection it has let go.
 */
export interface Host {
  /** The number of server messages handed to the application in this session. */
  readonly _received: number
  /** Truthy once a connection of the session proved itself (0 after the fall back to websocket until one does: see the session's _endUnknown). */
  readonly _everAttached?: boolean | 0
  /** _url returns the URL of endpoint path with the session's parameters and query. */
  _url(path: string, query: Record<string, number>): URL
  /** _headers returns the headers of a fetch of endpoint path: the token's, on a same-origin request (then not in _url's URL). */
  _headers(path: string): Record<string, string> | undefined
  /** _proven: c has proven itself (a WebSocket opened, a stream's first bytes, a poll answered with frames); ignored for a probe. */
  _proven(c: Conn): void
  /** _heard: c carried something, so the connection works. */
  _heard(c: Conn): void
  /** _frame handles one frame read on c; false: stop reading (c was let go, or the session is over). */
  _frame(c: Conn, f: Frame): boolean
  /** _failed: c broke, or timed out, or (ended) a stream ended at its byte limit. */
  _failed(c: Conn, ended?: boolean): void
  /**
   * _gone: the server answered 404 to c's request: it does not know the
   * session. early: the request was made before the session first attached.
   */
  _gone(c: Conn, early: boolean): void
  /** _probed: the probe c received its first bytes, so no proxy holds the stream back. */
  _probed(c: Conn): void
  /**
   * _polls reports whether the long poll c polls again: not once it was let
   * go, nor while a probe's attach is under way (then it parks, and the
   * session starts it again if that attach fails).
   */
  _polls(c: Conn): boolean
}

/** Transport attaches c over one transport, reporting to host. */
export type Transport = (c: Conn, host: Host) => void
