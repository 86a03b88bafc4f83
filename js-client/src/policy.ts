// Pure decisions, kept apart from the I/O so that node's test runner can
// check them: which transports to try in which order, how long to wait
// before trying again, and which close codes end the client for good.

/**
 * The transports this client speaks, by their names in PROTOCOL.md, in the
 * default order (the order a server offers them in by default). The one
 * list of them: tether.ts's transportsByName must have an entry for each
 * (the compiler checks), so adding a transport adds its name here and its
 * function there.
 */
export const transports = ['websocket', 'sse', 'streaming', 'longpoll'] as const

/** The name of a transport this client speaks. */
export type TransportName = (typeof transports)[number]

/**
 * defaults holds the default of each TetherOptions field that has a number
 * for default (tether.ts documents each field): the one place they are
 * written.
 */
export const defaults = { timeout: 5000, minDelay: 250, maxDelay: 10000 }

/**
 * withDefaults returns a copy of options (null or undefined: none) with
 * each field of defaults that options leaves out, or sets to undefined,
 * set to its default.
 */
export const withDefaults = <T extends object>(options?: T | null): T & typeof defaults => {
  const o: any = { ...options }
  for (const k in defaults) o[k] ??= defaults[k as keyof typeof defaults]
  return o
}

/** The version of PROTOCOL.md this client speaks, asked for in negotiate's v and required of its answer. */
export const protocolVersion = 1

/**
 * backoff returns the delay in milliseconds before round number attempt
 * (0 for the first retry): min doubled per attempt, capped at max, with
 * "equal jitter" so that it lies in [d/2, d] and clients cut at the same
 * moment spread out.
 */
export const backoff = (attempt: number, min: number, max: number, random = Math.random): number =>
  Math.min(max, min * 2 ** attempt) * (0.5 + random() / 2)

/**
 * order returns the transports to try, in order: those the server offers,
 * in the server's order, that the client knows, that the force list
 * (transports) names if it is given, and that the exclude list does not
 * name. The transport remembered from an earlier session in this tab comes
 * first.
 */
export const order = (
  offered: string[],
  o: { transports?: string[]; exclude?: string[] },
  remembered?: string | null,
): string[] => {
  const list = offered.filter(
    (n) => (transports as readonly string[]).includes(n) && (!o.transports || o.transports.includes(n)) && !o.exclude?.includes(n),
  )
  return remembered && list.includes(remembered) ? [remembered, ...list.filter((n) => n != remembered)] : list
}

/**
 * probes returns the transports to probe while long polling carries the
 * session (fast connect, PROTOCOL.md section 10), in order, or undefined
 * when the client tries the transports of list one after another instead:
 * when upgrade is false, or list has no long polling or nothing else.
 */
export const probes = (list: string[], upgrade?: boolean): string[] | undefined =>
  upgrade != false && list.length > 1 && list.includes('longpoll') ? list.filter((n) => n != 'longpoll') : undefined

/**
 * reconnects reports whether a client negotiates a new session by itself
 * after a close with this code (PROTOCOL.md section 6).
 */
export const reconnects = (code: number): boolean => code == 1001 || (code > 1010 && code < 1014) || code == 4006
