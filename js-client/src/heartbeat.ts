// Heartbeat: the interval a session's connections beat at, and the
// detection of a proxy that closes idle connections sooner (PROTOCOL.md
// sections 5.3 and 10.4).

/**
 * Heartbeat runs a session's tick every half interval. The interval is the
 * negotiated one until two cuts in a row after about the same idle time T
 * (at least 2 s, shorter than the interval in use) show a proxy that closes
 * idle connections: from then on it is T/2 (at least 1 s), which the client
 * asks of the server on each attach (_asked). A new session starts a new
 * Heartbeat. Its members start with _, as every internal name.
 */
export class Heartbeat {
  /** _interval is the interval in use, ms. */
  _interval: number
  /** _negotiated is the interval of the negotiate answer, ms. */
  private _negotiated: number
  /** _lastIdleCut is how long the last cut connection had been idle, ms, when that was an idle cut; 0 or undefined: none. */
  private _lastIdleCut?: number
  /** _tick runs every half interval. */
  private _tick: () => void
  private _ticker?: ReturnType<typeof setInterval>

  /** The tick starts at once; _stop stops it. */
  constructor(negotiated: number, tick: () => void) {
    this._interval = this._negotiated = negotiated
    this._tick = tick
    this._restart()
  }

  /** _asked is the heartbeatMs an attach asks for: the interval once shortened, else undefined. */
  get _asked(): number | undefined {
    return this._interval < this._negotiated ? this._interval : undefined
  }

  /**
   * _cut records the cut of a connection that worked and had been idle for
   * idle ms (nothing received, nor sent on a WebSocket). It reports whether
   * that shortened the interval.
   */
  _cut(idle: number): boolean {
    const previous = this._lastIdleCut
    this._lastIdleCut = idle >= 2000 && idle < this._interval ? idle : 0
    if (!this._lastIdleCut || !previous || Math.abs(idle - previous) > Math.max(idle, previous) / 4) return false
    this._interval = Math.max(1000, Math.floor(Math.min(idle, previous) / 2))
    this._lastIdleCut = 0
    this._restart()
    return true
  }

  /** _stop stops the tick. */
  _stop(): void {
    clearInterval(this._ticker)
  }

  private _restart() {
    clearInterval(this._ticker)
    this._ticker = setInterval(this._tick, this._interval / 2)
  }
}
