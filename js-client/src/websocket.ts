// The websocket transport (PROTOCOL.md section 4.2): one frame per WebSocket
// message from the client; from the server, one frame per text message, and
// (with the compact subprotocol) several frames per binary message.

import { parseCompact, textFrame } from './codec'
import type { Tether } from './tether'

/**
 * Conn is one connection attached, or being attached, to the session. The
 * transport fills in stop (and ws for a WebSocket); the session owns the rest.
 */
export interface Conn {
  /** The transport name. */
  name: string
  /** The number of the last server message carried, counting from the received of its attach. */
  n: number
  /** When something last arrived, ms since the epoch. */
  seen: number
  /** Set once the connection proved itself. */
  ok?: boolean
  /** The attach timeout. */
  timer?: any
  /** stop abandons the connection. Calling it again does nothing. */
  stop(): void
  /** longpoll: stopped polling while a probe attaches. */
  parked?: boolean
  /** A probe (PROTOCOL.md section 10): shows the transport works, never attaches. */
  probe?: boolean
  /** The HTTP status of the failed request, for the error event; 0 or absent: no answer. */
  status?: number
  /** websocket, attached as a probe: open, and waiting for the poll in flight to end before it takes over. */
  opened?: boolean
  /** websocket: probed again once after it was superseded by a poll that arrived late. */
  again?: boolean
  /** The WebSocket, for the websocket transport. */
  ws?: WebSocket
  /** websocket: the number the next client message written to ws has. */
  next?: number
  /** websocket: when something was last written to ws, ms since the epoch. */
  sent?: number
}

/**
 * compactSubprotocol asks the server to batch frames: a browser dispatches
 * each WebSocket message as a task of its own, so a burst arrives several
 * times faster in fewer, larger messages.
 */
const compactSubprotocol = 'tether.compact'

/** websocket attaches c over a WebSocket. */
export const websocket = (t: Tether, c: Conn) => {
  c.next = t._acked + 1
  const ws = (c.ws = new WebSocket((t._url('websocket', { received: c.n, seq: c.next }) + '').replace('http', 'ws'), compactSubprotocol))
  ws.binaryType = 'arraybuffer'
  c.stop = () => {
    ws.onclose = ws.onmessage = null
    ws.close()
  }
  ws.onopen = () => {
    c.sent = Date.now()
    t._ok(c)
  }
  ws.onmessage = (e) => {
    try {
      if (typeof e.data == 'string') t._in(c, textFrame(e.data))
      else if (ws.protocol != compactSubprotocol) t._in(c, ['b', new Uint8Array(e.data)])
      else {
        // A compact batch (PROTOCOL.md section 4.2), read to its end.
        const p = new Uint8Array(e.data)
        const i = parseCompact(p, 0, (f) => t._in(c, f))
        if (i >= 0 && i < p.length) throw i
      }
    } catch {
      t._fail(c)
    }
  }
  ws.onclose = () => t._fail(c)
}
