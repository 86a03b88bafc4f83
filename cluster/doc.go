// Package cluster makes several Tether servers one service: any node serves
// any session, on every transport, with no sticky sessions, and a publish
// on any node reaches the subscribers of every node.
//
// The nodes share a Bus (Redis through package redisbus, NATS through
// package natsbus, or MemoryBus in one process). The node that creates a
// session owns it: the application's handler runs there, and the session's
// id names the node. A request that reaches another node is relayed over
// the bus to the owner, which checks the token and answers; the node that
// received the request serves the connection.
package cluster
