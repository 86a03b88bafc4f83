// Package busdial connects the commands that run cluster nodes
// (examples/cluster, the bench, the browser tests' cluster) to a bus given
// by its URL, so that each needs one flag or variable for it:
// redis://host:port for cluster/redisbus, nats://host:port for
// cluster/natsbus.
package busdial

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsbus"
	"github.com/tetherkit/tether/cluster/redisbus"
	"github.com/tetherkit/tether/cluster/redisstate"
)

// Dial connects to the bus at url with the bus package's default options
// and logger (nil logs nothing): go-redis's default timeouts and retries
// suit a cluster, and a NATS connection reconnects for as long as the node
// runs, every 500 ms, as natsbus advises. closeBus closes the bus, then its
// client. Dial returns an error for a URL of another scheme, a malformed
// one, and the client's or the bus package's error.
func Dial(url string, logger *slog.Logger) (bus cluster.Bus, closeBus func(), err error) {
	switch {
	case strings.HasPrefix(url, "redis://"):
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, err
		}
		client := redis.NewClient(opt)
		b, err := redisbus.New(client, &redisbus.Options{Logger: logger})
		if err != nil {
			client.Close()
			return nil, nil, err
		}
		return b, func() { b.Close(); client.Close() }, nil
	case strings.HasPrefix(url, "nats://"):
		nc, err := nats.Connect(url,
			nats.MaxReconnects(-1), // a node reconnects for as long as it runs
			nats.ReconnectWait(500*time.Millisecond),
			nats.RetryOnFailedConnect(true),
		)
		if err != nil {
			return nil, nil, err
		}
		b, err := natsbus.New(nc, &natsbus.Options{Logger: logger})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return b, func() { b.Close(); nc.Close() }, nil
	}
	return nil, nil, fmt.Errorf("busdial: bus URL %q: want redis:// or nats://", url)
}

// DialState connects to the Redis at url (redis://host:port) for the
// durable state of a node's sessions (cluster.NodeOptions.State), through
// package redisstate with the given LeaseTTL (0: redisstate's default) and
// the default key prefix. closeState closes its client. It returns an
// error for a URL of another scheme or a malformed one, and redisstate's
// error for an out-of-range LeaseTTL.
func DialState(url string, leaseTTL time.Duration) (state cluster.StateStore, closeState func(), err error) {
	client, err := redisClient("state", url)
	if err != nil {
		return nil, nil, err
	}
	store, err := redisstate.New(client, &redisstate.Options{LeaseTTL: leaseTTL})
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return store, func() { client.Close() }, nil
}

// DialHistory connects to the Redis at url (redis://host:port) for the
// history of a node's topics (cluster.NodeOptions.History), through package
// redisstate's TopicHistory with its defaults: give it with DialState's
// store, so that a session taken over receives what was published to its
// topics while no node held it. closeHistory closes its client. It returns
// an error for a URL of another scheme or a malformed one.
func DialHistory(url string) (history cluster.History, closeHistory func(), err error) {
	client, err := redisClient("history", url)
	if err != nil {
		return nil, nil, err
	}
	h, err := redisstate.NewHistory(client, nil)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return h, func() { client.Close() }, nil
}

// redisClient returns a client of the Redis at url (redis://host:port), for
// what names its use in errors.
func redisClient(what, url string) (*redis.Client, error) {
	if !strings.HasPrefix(url, "redis://") {
		return nil, fmt.Errorf("busdial: %s URL %q: want redis://", what, url)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}
