// Compiled (never run) by test.sh against dist/tether.d.ts: the published
// types accept what the WebSocket-shaped API promises.
import Default, { MessageTooBigError, Tether, type TetherCloseEvent, type TetherOptions } from '../../dist/tether'

const options: TetherOptions = { transports: ['websocket', 'longpoll'], exclude: ['sse'], upgrade: true, timeout: 3000, headers: { Authorization: 'Bearer x' } }
const t: Tether = new Default('/rt/', options)
t.binaryType = 'arraybuffer'
t.onopen = () => t.send('hello')
t.onmessage = (e) => {
  const data: string | Blob | ArrayBuffer = e.data
  return data
}
t.onclose = (e: TetherCloseEvent) => console.log(e.code, e.reason, e.wasClean)
t.onerror = (e: Event) => e
t.addEventListener('reconnecting', (e) => e.code + e.reason.length)
t.addEventListener('resuming', () => t.readyState)
t.onresuming = () => t.transport
t.addEventListener('transport', (e) => e.transport.toUpperCase())
t.addEventListener('resumed', () => t.transport)
t.send(new Uint8Array([1]))
t.send(new DataView(new ArrayBuffer(1)))
t.send(new ArrayBuffer(1))
t.send(new Blob(['x']))
try {
  t.send('x'.repeat(1 << 20))
} catch (e) {
  if (e instanceof MessageTooBigError) console.log(e.name, e.size, e.limit)
}
t.onerror = (e) => e.error?.name
const state: number = t.readyState + t.bufferedAmount + Tether.OPEN + t.CLOSED
console.log(state, t.url, t.session)
t.close(4100, 'bye')
