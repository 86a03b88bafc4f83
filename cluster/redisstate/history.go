package redisstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// DefaultHistoryLen is the MaxLen of a nil or zero HistoryOptions.
const DefaultHistoryLen = 10000

// HistoryOptions configure a TopicHistory. The zero value (or nil) gives
// the defaults.
type HistoryOptions struct {
	// Prefix starts every key, as Options.Prefix. Default "tether".
	Prefix string
	// MaxLen is how many of a topic's latest messages are kept at most.
	// Default DefaultHistoryLen (10,000).
	MaxLen int
	// Window is how long a topic's messages are kept after its last
	// publish: the server's session.Config.ResumeWindow, so that a session
	// taken over within it finds what it missed. Default
	// session.DefaultResumeWindow.
	Window time.Duration
}

// TopicHistory is a cluster.History in Redis: what is published to each
// topic, numbered per topic, kept for a while. Give it to every node of the
// cluster (cluster.NodeOptions.History).
//
// A topic's messages are one stream, its counter one string:
//
//	<Prefix>:topic:{<topic>}:n   string: the last offset given (INCR)
//	<Prefix>:topic:{<topic>}:h   stream: one entry per message, entry id
//	                             "<offset>-0", fields t (type, decimal),
//	                             d (data) and, for a publish that excluded
//	                             a session, x (its id); at most MaxLen
//	                             entries (XADD MAXLEN), expiring Window
//	                             after the topic's last publish
//
// The two keys share the hash tag {<topic>}: on a Redis Cluster a topic
// lives on one shard. The counter never expires, so offsets never start
// over: each topic ever published to keeps one small key (DEL both keys of
// a topic that is retired for good). Append is one EVALSHA (INCR, XADD,
// PEXPIRE): one round trip; Range one EVALSHA; Heads one pipeline of GETs.
// All methods may be called concurrently.
type TopicHistory struct {
	client redis.UniversalClient
	prefix string
	maxLen string
	window string
}

var _ cluster.History = (*TopicHistory)(nil)

// NewHistory returns a TopicHistory on client. It returns an error for
// options out of range: a Prefix with "{" or "}", a negative MaxLen or
// Window.
func NewHistory(client redis.UniversalClient, opts *HistoryOptions) (*TopicHistory, error) {
	o := HistoryOptions{Prefix: "tether", MaxLen: DefaultHistoryLen, Window: session.DefaultResumeWindow}
	if opts != nil {
		o = HistoryOptions{Prefix: cmp.Or(opts.Prefix, o.Prefix), MaxLen: cmp.Or(opts.MaxLen, o.MaxLen), Window: cmp.Or(opts.Window, o.Window)}
	}
	switch {
	case strings.ContainsAny(o.Prefix, "{}"):
		return nil, fmt.Errorf("redisstate: Prefix %q holds a brace", o.Prefix)
	case o.MaxLen < 1:
		return nil, fmt.Errorf("redisstate: history MaxLen %d under 1", o.MaxLen)
	case o.Window < time.Millisecond:
		return nil, fmt.Errorf("redisstate: history Window %v under 1 ms", o.Window)
	}
	h := &TopicHistory{client: client, prefix: o.Prefix, maxLen: strconv.Itoa(o.MaxLen)}
	h.window = strconv.FormatInt(o.Window.Milliseconds(), 10)
	return h, nil
}

// appendScript: KEYS counter, stream; ARGV 1 max length, 2 window ms,
// 3 type, 4 data, 5 excluded session or "". Returns the offset.
var appendScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local id = n .. '-0'
if ARGV[5] == '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], id, 't', ARGV[3], 'd', ARGV[4])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], id, 't', ARGV[3], 'd', ARGV[4], 'x', ARGV[5])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return n
`)

// rangeScript: KEYS counter, stream; ARGV 1 from, 2 count. Returns the
// entries from offset from on, or an error reply TETHER_GAP when the first
// of them is no longer kept, or from is more than one past the counter
// (the counter was lost: offsets started over).
var rangeScript = redis.NewScript(`
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local from = tonumber(ARGV[1])
if from > head + 1 then return redis.error_reply('TETHER_GAP offset ' .. ARGV[1] .. ' past the last, ' .. head) end
if from > head then return {} end
local r = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
if #r == 0 or r[1][1] ~= ARGV[1] .. '-0' then
  return redis.error_reply('TETHER_GAP offset ' .. ARGV[1] .. ' no longer kept')
end
return r
`)

func (h *TopicHistory) keys(topic string) []string {
	k := h.prefix + ":topic:{" + topic + "}:"
	return []string{k + "n", k + "h"}
}

// Append implements cluster.History. It returns an error wrapping
// cluster.ErrHistoryUnavailable when Redis cannot be reached (the message may or may not
// have been appended), or cluster.ErrHistoryCorrupt when the topic's keys are not what
// this package writes.
func (h *TopicHistory) Append(ctx context.Context, topic string, m wire.Message, exclude string) (uint64, error) {
	v, err := appendScript.Run(ctx, h.client, h.keys(topic), h.maxLen, h.window, strconv.Itoa(int(m.Type)), m.Data, exclude).Result()
	if err != nil {
		return 0, h.mapError(ctx, topic, err)
	}
	n, err := number(v)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: topic %q: offset %v", cluster.ErrHistoryCorrupt, topic, v)
	}
	return n, nil
}

// Range implements cluster.History. Besides an error wrapping
// cluster.ErrHistoryGap, it returns one wrapping cluster.ErrHistoryUnavailable or
// cluster.ErrHistoryCorrupt.
func (h *TopicHistory) Range(ctx context.Context, topic string, from uint64, limit int) ([]cluster.HistoryEntry, error) {
	if from == 0 || limit < 1 {
		return nil, fmt.Errorf("redisstate: Range from offset %d, limit %d", from, limit)
	}
	v, err := rangeScript.Run(ctx, h.client, h.keys(topic), strconv.FormatUint(from, 10), strconv.Itoa(limit)).Result()
	if err != nil {
		return nil, h.mapError(ctx, topic, err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: topic %q: range of %T", cluster.ErrHistoryCorrupt, topic, v)
	}
	entries := make([]cluster.HistoryEntry, 0, len(list))
	for i, e := range list {
		entry, err := parseHistoryEntry(e, from+uint64(i))
		if err != nil {
			return nil, fmt.Errorf("%w: topic %q: %v", cluster.ErrHistoryCorrupt, topic, err)
		}
		entries = append(entries, entry)
	}
	return entries, nil
}

// Heads implements cluster.History. It returns an error wrapping
// cluster.ErrHistoryUnavailable or cluster.ErrHistoryCorrupt.
func (h *TopicHistory) Heads(ctx context.Context, topics []string) ([]uint64, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(topics))
	_, err := h.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range topics {
			cmds[i] = p.Get(ctx, h.keys(t)[0])
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, h.mapError(ctx, topics[0], err)
	}
	heads := make([]uint64, len(topics))
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, h.mapError(ctx, topics[i], err)
		}
		if heads[i], err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: topic %q: counter %q", cluster.ErrHistoryCorrupt, topics[i], v)
		}
	}
	return heads, nil
}

// mapError turns a script's error reply into cluster.ErrHistoryGap or
// cluster.ErrHistoryCorrupt, and anything else into an error wrapping cluster.ErrHistoryUnavailable.
func (h *TopicHistory) mapError(ctx context.Context, topic string, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, redis.Nil) {
		msg := strings.TrimPrefix(rerr.Error(), "ERR ")
		switch word, rest, _ := strings.Cut(msg, " "); {
		case word == "TETHER_GAP":
			return fmt.Errorf("%w: topic %q: %s", cluster.ErrHistoryGap, topic, rest)
		case word == "WRONGTYPE", strings.Contains(msg, "equal or smaller"), strings.Contains(msg, "not an integer"):
			return fmt.Errorf("%w: topic %q: %s", cluster.ErrHistoryCorrupt, topic, firstLine(msg))
		}
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", err, cerr)
	}
	return fmt.Errorf("%w: %w", cluster.ErrHistoryUnavailable, err)
}

// parseHistoryEntry decodes one stream entry {"<offset>-0", {"t", type,
// "d", data[, "x", session]}}, which must be offset's.
func parseHistoryEntry(e any, offset uint64) (cluster.HistoryEntry, error) {
	entry := cluster.HistoryEntry{Offset: offset}
	if pair, ok := e.([]any); ok && len(pair) == 2 {
		if fields, ok := pair[1].([]any); ok && len(fields) == 6 {
			if fields[4] != "x" {
				return entry, fmt.Errorf("offset %d: fields %v", offset, fields)
			}
			entry.Exclude, _ = fields[5].(string)
			e = []any{pair[0], fields[:4]}
		}
	}
	m, err := parseEntry(e, offset)
	entry.Message = m
	return entry, err
}
