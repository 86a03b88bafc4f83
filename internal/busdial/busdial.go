// Package busdial connects the commands that run cluster nodes (the bench,
// the browser tests' cluster) to a bus given by its URL, so that each
// needs one flag or variable for it: redis://host:port for cluster/redisbus,
// nats://host:port for cluster/natsbus.
package busdial

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsbus"
	"github.com/tetherkit/tether/cluster/redisbus"
)

// Dial connects to the bus at url with the bus package's default options;
// a NATS connection tries to reconnect forever, as natsbus advises for a
// cluster. closeBus closes the bus, then its client. Dial returns an error
// for a URL of another scheme, a malformed one, and the client's or the bus
// package's error.
func Dial(url string) (bus cluster.Bus, closeBus func(), err error) {
	switch {
	case strings.HasPrefix(url, "redis://"):
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, err
		}
		client := redis.NewClient(opt)
		b, err := redisbus.New(client, nil)
		if err != nil {
			client.Close()
			return nil, nil, err
		}
		return b, func() { b.Close(); client.Close() }, nil
	case strings.HasPrefix(url, "nats://"):
		nc, err := nats.Connect(url, nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, err
		}
		b, err := natsbus.New(nc, nil)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return b, func() { b.Close(); nc.Close() }, nil
	}
	return nil, nil, fmt.Errorf("busdial: bus URL %q: want redis:// or nats://", url)
}
