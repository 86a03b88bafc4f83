// Package conformance is the behaviour table every Tether transport must
// pass unchanged: echo, ordering, limits, close, heartbeats through a proxy
// that kills idle connections, resume after cuts, and the refusals of bad
// requests. Run runs it for one transport; the package's own test runs it
// for every transport the server offers by default, so a transport added
// to the server is tested without editing this table.
package conformance
