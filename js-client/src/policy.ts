// Pure decisions, kept apart from the I/O so that node's test runner can
// check them: which transports to try in which order, how long to wait
// before trying again, and which close codes end the client for good.

/** The transports this client speaks, in its order of preference. */
export const transports = ['websocket', 'sse', 'streaming', 'longpoll']

/**
 * backoff returns the delay in milliseconds before try number attempt
 * (0 for the first retry): min doubled per attempt, capped at max, with
 * "equal jitter" so that it lies in [d/2, d] and clients cut at the same
 * moment spread out.
 */
export const backoff = (attempt: number, min = 250, max = 10000, random = Math.random): number =>
  Math.min(max, min * 2 ** attempt) * (0.5 + random() / 2)

/**
 * order returns the transports to try, in order: those the server offers,
 * in the server's order, that the client knows, that the force list
 * (transports) names if it is given, and that the exclude list does not
 * name. The transport remembered from an earlier success comes first;
 * with upgrade, long polling comes first instead.
 */
export const order = (
  offered: string[],
  o: { transports?: string[]; exclude?: string[]; upgrade?: boolean },
  remembered?: string | null,
): string[] => {
  const list = offered.filter(
    (n) => transports.includes(n) && (!o.transports || o.transports.includes(n)) && !o.exclude?.includes(n),
  )
  const first = o.upgrade ? 'longpoll' : remembered
  return first && list.includes(first) ? [first, ...list.filter((n) => n != first)] : list
}

/**
 * reconnects reports whether a client negotiates a new session by itself
 * after a close with this code (PROTOCOL.md section 6).
 */
export const reconnects = (code: number): boolean => code == 1001 || (code > 1010 && code < 1014)
