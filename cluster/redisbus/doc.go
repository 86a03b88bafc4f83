// Package redisbus is a cluster.Bus on Redis 7 or later: the nodes of a
// Tether cluster share one Redis (or one Redis Cluster) through sharded
// pub/sub.
//
// # What crosses Redis
//
// A Publish is one SPUBLISH of the data as it is, on the channel
// "{Prefix}.pub.<subject>". A Request is one SPUBLISH on
// "{Prefix}.req.<subject>" of an envelope (a kind byte, a correlation id,
// the time left before the requester's deadline, the requester's reply
// channel, then the data: about 30 bytes besides the data), and its reply
// one SPUBLISH on the requester's reply channel "{Prefix}.reply.<random>"
// of an envelope of about 10 bytes besides the reply. SPUBLISH answers how
// many connections subscribe the channel; a Request answered 0 returns
// cluster.ErrNoResponders at once.
//
// Every channel of a Bus shares the hash tag {Prefix}, so on a Redis
// Cluster all of one Tether cluster's traffic goes through the shard that
// owns that slot (and, sharded pub/sub being what it is, is not broadcast
// to every shard). Tether clusters that share a Redis give each a Prefix
// of its own.
//
// # Receiving
//
// A Bus holds one pub/sub connection of the client's and reads it in a
// loop of its own (not with PubSub.Channel, which drops a message after
// 60 s of back-pressure): each subscription gets its messages in order on
// a goroutine of its own, through a queue of SubscriberQueue messages;
// messages for a subscription whose queue is full are dropped for it alone
// and counted by Dropped (delivery is at most once). A message on a request
// or reply channel that is not a well-formed envelope (anyone may SPUBLISH
// on the prefix) is dropped, counted by Malformed and logged at Warn.
//
// # When Redis goes away
//
// While Redis cannot be reached, Publish, Request, Subscribe and Serve
// return errors wrapping cluster.ErrUnavailable, and the Bus's loop tries
// to reconnect, from 50 ms up to every second. go-redis subscribes the
// new connection to every channel of the old one, so subscriptions and
// handlers work again once Redis is back, with no action of the
// application's; what was published meanwhile is lost, as a restarted
// Redis keeps nothing of pub/sub. Until the Bus has resubscribed, a
// Request may get cluster.ErrNoResponders.
//
// # The client
//
// The application makes the client (redis.NewClient, redis.NewClusterClient
// or redis.NewUniversalClient) and closes it after the Bus: Close does not
// close it. Publish and Request are commands of the client's pool, so its
// MaxRetries, DialTimeout, ReadTimeout and WriteTimeout bound how long they
// wait for an unreachable Redis; the defaults (3 retries, 5 s, 3 s, 3 s)
// suit a cluster. The client must speak to Redis 7 or later (SSUBSCRIBE);
// with a Redis Cluster, use a *redis.ClusterClient without ReadOnly (a
// subscription on a replica is not counted by the primary's SPUBLISH, so
// every Request would get cluster.ErrNoResponders).
//
// The loop learns that the pub/sub connection is gone when Redis closes it
// or the TCP connection fails; a network that silently drops everything is
// noticed by the TCP keepalive of go-redis's default dialer (probes after
// 30 s idle, 3 unanswered 5 s apart), so after about 45 s.
package redisbus
