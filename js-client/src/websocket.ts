// The websocket transport (PROTOCOL.md section 4.2): one frame per WebSocket
// message from the client; from the server, one frame per text message, and
// (with the compact subprotocol) several frames per binary message.

import { malformed, parseCompact, textFrame } from './codec'
import type { Conn, Host } from './conn'

/**
 * compactSubprotocol asks the server to batch frames: a browser dispatches
 * each WebSocket message as a task of its own, so a burst arrives several
 * times faster in fewer, larger messages.
 */
const compactSubprotocol = 'tether.compact'

/** websocket attaches c over a WebSocket, which carries client messages too (c._write). */
export const websocket = (c: Conn, host: Host) => {
  const ws = new WebSocket((host._url('websocket', { received: c._carried, seq: c._nextSeq }) + '').replace('http', 'ws'), compactSubprotocol)
  ws.binaryType = 'arraybuffer'
  c._stop = () => {
    ws.onclose = ws.onmessage = null
    ws.close()
  }
  // A WebSocket closed under us is no longer OPEN (1) before its close event
  // comes: a write then would only make the browser log an error.
  c._write = (frame) => ws.readyState == 1 && (ws.send(frame), (c._lastWritten = Date.now()), true)
  ws.onopen = () => {
    c._lastWritten = Date.now()
    host._proven(c)
  }
  ws.onmessage = (e) => {
    c._lastHeard = Date.now()
    try {
      if (typeof e.data == 'string') host._frame(c, textFrame(e.data))
      else if (ws.protocol != compactSubprotocol) host._frame(c, ['b', new Uint8Array(e.data)])
      else {
        // A compact batch (PROTOCOL.md section 4.2), read to its end.
        const p = new Uint8Array(e.data)
        const i = parseCompact(p, 0, (f) => host._frame(c, f))
        if (i >= 0 && i < p.length) malformed()
      }
    } catch {
      host._failed(c)
    }
  }
  ws.onclose = () => host._failed(c)
}
