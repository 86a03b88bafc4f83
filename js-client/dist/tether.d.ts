/** Options of a Tether client. Every field is optional. */
export interface TetherOptions {
    /** Use only these transports (for example `['longpoll']`). Default: all the server offers. */
    transports?: string[];
    /** Never use these transports. */
    exclude?: string[];
    /**
     * Fast connect (PROTOCOL.md section 10): start on long polling at once, for
     * a fast first message, while the better transports are probed; move to
     * the best one that works. Default true. With false, the transports are
     * tried one after another, each for up to timeout.
     */
    upgrade?: boolean;
    /**
     * How long one transport may take to attach (or a probe to answer) before
     * it counts as failed, ms; also bounds negotiate and close. Default 5000.
     */
    timeout?: number;
    /**
     * The first delay between rounds of attempts (to negotiate, to attach
     * again after a cut, to retry a send request), ms; it doubles per failed
     * round, with jitter. Default 250.
     */
    minDelay?: number;
    /** The longest delay between rounds of attempts, ms. Default 10000. */
    maxDelay?: number;
    /**
     * Negotiate a new session by itself after the close codes that say so
     * (1001, 1011, 1012, 1013, and 4006: the cluster node that held the
     * session is gone). Default true.
     */
    reconnect?: boolean;
    /** Headers for the negotiate request, for example `Authorization`. */
    headers?: Record<string, string>;
}
/** TetherMessageEvent is dispatched for every message from the server. */
export interface TetherMessageEvent extends Event {
    /** A string for a text message; a Blob or ArrayBuffer (see binaryType) for a binary one. */
    readonly data: string | Blob | ArrayBuffer;
}
/** TetherCloseEvent is dispatched once, when the session is over. */
export interface TetherCloseEvent extends Event {
    readonly code: number;
    readonly reason: string;
    /** True when a close frame was sent or received. */
    readonly wasClean: boolean;
}
/**
 * TetherReconnectingEvent is dispatched when the server closed the session
 * with a code after which the client negotiates a new session by itself
 * (1001, 1011, 1012, 1013, 4006; see the reconnect option). open follows once the
 * new session is attached. A lost connection is not this: see resuming.
 */
export interface TetherReconnectingEvent extends Event {
    /** The close code the server sent. */
    readonly code: number;
    /** The close reason the server sent. */
    readonly reason: string;
}
/** TetherTransportEvent is dispatched when the transport in use changes. */
export interface TetherTransportEvent extends Event {
    readonly transport: string;
}
/**
 * TetherErrorEvent is dispatched for every failed attempt (the session goes
 * on and tries again), for a message refused after send returned (see
 * MessageTooBigError), and before every close that is not clean (then
 * request is absent).
 */
export interface TetherErrorEvent extends Event {
    /** What failed: 'negotiate', 'attach', 'probe' or 'send'. */
    readonly request?: string;
    /** The transport of the attach or probe, or the one in use for a send. */
    readonly transport?: string;
    /** The HTTP status of the answer; 0 when there was none (a network error, a timeout, a WebSocket refused). */
    readonly status?: number;
    /** The MessageTooBigError of a message refused after send returned; absent otherwise. */
    readonly error?: Error;
}
/**
 * TetherEventMap lists the events a Tether dispatches, by type. resuming:
 * the connection was lost and the client attaches again to the same
 * session; resumed: it is attached again, nothing lost.
 */
export interface TetherEventMap {
    open: Event;
    message: TetherMessageEvent;
    close: TetherCloseEvent;
    error: TetherErrorEvent;
    resuming: Event;
    resumed: Event;
    reconnecting: TetherReconnectingEvent;
    transport: TetherTransportEvent;
}
type Handler<E> = ((this: Tether, ev: E) => any) | null;
export interface Tether {
    addEventListener<K extends keyof TetherEventMap>(type: K, listener: (this: Tether, ev: TetherEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
    removeEventListener<K extends keyof TetherEventMap>(type: K, listener: (this: Tether, ev: TetherEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
/**
 * MessageTooBigError is thrown by send for a message larger than the
 * server's maxMessageBytes (PROTOCOL.md section 2; a string counts its
 * UTF-8 bytes): the message is not sent and the session goes on, as with the
 * Go client's ErrMessageTooBig. Its name is 'MessageTooBigError'. The limit
 * comes with the negotiate answer: a message sent before it, found too big
 * then, is dropped and reported by an error event whose error is this.
 */
export declare class MessageTooBigError extends RangeError {
    /** The size of the message, bytes. */
    readonly size: number;
    /** The server's limit, maxMessageBytes. */
    readonly limit: number;
    constructor(size: number, limit: number);
}
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
export declare class Tether extends EventTarget {
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
    readonly CONNECTING: 0;
    readonly OPEN: 1;
    readonly CLOSING: 2;
    readonly CLOSED: 3;
    /** The prefix URL the server is mounted at, with its trailing slash. */
    readonly url: string;
    /** CONNECTING, OPEN (also while a cut connection is being resumed), CLOSING or CLOSED. */
    readyState: number;
    /** How binary messages are handed over: 'blob' (the default) or 'arraybuffer'. */
    binaryType: BinaryType;
    /** The transport in use: websocket, sse, streaming or longpoll; null before the first attach. */
    transport: string | null;
    /** The public session id; null before negotiate. */
    session: string | null;
    onopen: Handler<Event>;
    onmessage: Handler<TetherMessageEvent>;
    onclose: Handler<TetherCloseEvent>;
    onerror: Handler<TetherErrorEvent>;
    onresuming: Handler<Event>;
    onresumed: Handler<Event>;
    onreconnecting: Handler<TetherReconnectingEvent>;
    ontransport: Handler<TetherTransportEvent>;
    constructor(url: string | URL, options?: TetherOptions | null);
    /**
     * bufferedAmount is the number of bytes of messages sent but not yet
     * acknowledged by the server.
     */
    get bufferedAmount(): number;
    /**
     * send queues a message: a string is a text message; an ArrayBuffer, a
     * typed array, a DataView or a Blob is a binary message. The bytes are
     * copied. Messages are delivered in the order of send calls. After close,
     * send does nothing. It throws a MessageTooBigError, and the session goes
     * on, for a message larger than the server's limit.
     */
    send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
    /**
     * close ends the session: the messages sent before it are delivered first,
     * then a close frame with code (1000 or 3000-4999) and reason (at most 123
     * bytes of UTF-8). The close event follows.
     */
    close(code?: number, reason?: string): void;
}
export default Tether;
