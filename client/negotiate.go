package client

import (
	"context"
	"encoding/json"
	"fmt"

	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/transport"
)

// negotiation is the server's answer to negotiate, with the protocol's
// defaults filled in for limits the server left out.
type negotiation struct {
	transport.Negotiation
}

// Protocol defaults, used when the negotiate answer omits a limit.
const (
	protocolVersion        = 1
	defaultHeartbeat       = 25 * time.Second
	defaultResumeWindow    = 30 * time.Second
	defaultMaxMessageBytes = 64 << 10
	defaultMaxBodyBytes    = 1 << 20
	// maxNegotiateBody bounds the negotiate answer the client reads.
	maxNegotiateBody = 64 << 10
)

func (n *negotiation) heartbeat() time.Duration {
	return time.Duration(n.HeartbeatMs) * time.Millisecond
}

func (n *negotiation) resumeWindow() time.Duration {
	return time.Duration(n.ResumeWindowMs) * time.Millisecond
}

// parseNegotiation decodes and checks a negotiate answer. Unknown fields
// are ignored, as the protocol requires.
func parseNegotiation(r io.Reader) (*negotiation, error) {
	var n negotiation
	if err := json.NewDecoder(io.LimitReader(r, maxNegotiateBody)).Decode(&n); err != nil {
		return nil, fmt.Errorf("tether: malformed negotiate answer: %w", err)
	}
	if n.Protocol != protocolVersion {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedProtocol, n.Protocol)
	}
	if n.Session == "" || n.Token == "" {
		return nil, fmt.Errorf("tether: malformed negotiate answer: missing session or token")
	}
	// Durations beyond a day are a broken server, and would overflow
	// time.Duration.
	const maxMs = int64(24 * time.Hour / time.Millisecond)
	if n.HeartbeatMs > maxMs || n.ResumeWindowMs > maxMs {
		return nil, fmt.Errorf("tether: malformed negotiate answer: heartbeatMs or resumeWindowMs over a day")
	}
	if n.HeartbeatMs <= 0 {
		n.HeartbeatMs = defaultHeartbeat.Milliseconds()
	}
	if n.ResumeWindowMs <= 0 {
		n.ResumeWindowMs = defaultResumeWindow.Milliseconds()
	}
	if n.MaxMessageBytes <= 0 {
		n.MaxMessageBytes = defaultMaxMessageBytes
	}
	if n.MaxBodyBytes <= 0 {
		n.MaxBodyBytes = defaultMaxBodyBytes
	}
	return &n, nil
}

// normalizePrefix checks that raw is an absolute http or https URL and
// returns it with a trailing slash and without query or fragment.
func normalizePrefix(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("tether: invalid url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("tether: invalid url %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("tether: invalid url %q: no host", raw)
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// endpoint returns the URL of the endpoint name under prefix, with query q.
func endpoint(prefix *url.URL, name string, q url.Values) string {
	u := *prefix
	u.Path += name
	if u.RawPath != "" {
		u.RawPath += name
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// negotiate creates a session: POST {prefix}negotiate?v=1.
func negotiate(ctx context.Context, hc *http.Client, prefix *url.URL, header http.Header) (*negotiation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		endpoint(prefix, "negotiate", url.Values{"v": {"1"}}), http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("tether: negotiate: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tether: negotiate: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ne := &NegotiateError{Status: resp.StatusCode, Message: readErrorMessage(resp)}
		if ne.Status == http.StatusBadRequest && ne.Message == httpx.MsgUnsupportedVersion {
			// A server that does not speak this version, as one
			// answering another (PROTOCOL.md section 2).
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedProtocol, ne)
		}
		return nil, ne
	}
	return parseNegotiation(resp.Body)
}
