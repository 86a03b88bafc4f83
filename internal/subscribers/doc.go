// Package subscribers keeps the subscribers of one topic on one node in
// the order they subscribed, for the brokers to deliver to in that order
// (and the bench's hand-written broadcast loops to send in it likewise).
//
// A fan-out touches every subscriber's session and connection, objects that
// were allocated when the session connected, mostly next to those of the
// sessions that connected around the same time. Taken in the order of a
// map's iteration, every delivery lands on memory far from the last one and
// misses the processor's caches and its address translation buffer; taken
// in the order the sessions subscribed, neighbouring deliveries share them
// (BENCHMARKS.md, fan-out).
package subscribers
