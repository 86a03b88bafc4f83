package tether

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
)

func (srv *Server) serveNegotiate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpx.MethodNotAllowed(w, http.MethodPost)
		return
	}
	if r.URL.Query().Get("v") != "1" {
		httpx.Error(w, http.StatusBadRequest, httpx.MsgUnsupportedVersion)
		return
	}
	// The body is read, within MaxBodyBytes and ReadTimeout, before
	// anything else: net/http would otherwise wait, after the answer, for
	// the rest of a body announced and never sent. Authorize may read it.
	body, problem, err := httpx.ReadBody(w, r, srv.opts.MaxBodyBytes, srv.opts.ReadTimeout)
	if err != nil {
		if problem != "" && srv.tcfg.Logger != nil {
			srv.tcfg.Logger.Warn(problem, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		}
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s, err := srv.NewSession(r)
	// Reading the body and Authorize may have taken a while.
	httpx.AnswerWithin(w, srv.opts.WriteTimeout)
	if err != nil {
		status, msg := http.StatusUnauthorized, err.Error()
		var ae *AuthError
		switch {
		case errors.Is(err, ErrOriginNotAllowed):
			status, msg = http.StatusForbidden, httpx.MsgOriginNotAllowed
		case errors.Is(err, ErrShuttingDown):
			status, msg = http.StatusServiceUnavailable, httpx.MsgShuttingDown
		case errors.Is(err, session.ErrTooManySessions):
			status, msg = http.StatusServiceUnavailable, httpx.MsgTooManySessions
		case errors.Is(err, ErrTooManyForClient):
			status, msg = http.StatusServiceUnavailable, httpx.MsgTooManyForClient
		case errors.Is(err, ErrStateUnavailable):
			status, msg = http.StatusServiceUnavailable, httpx.MsgTryAgain
		case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
			status = ae.Status
		}
		httpx.Error(w, status, msg)
		return
	}
	resp := transport.Negotiation{
		Protocol:        ProtocolVersion,
		Session:         s.ID(),
		Token:           s.Token(),
		Transports:      srv.opts.Transports,
		HeartbeatMs:     srv.opts.HeartbeatInterval.Milliseconds(),
		ResumeWindowMs:  srv.opts.ResumeWindow.Milliseconds(),
		MaxMessageBytes: srv.opts.MaxMessageBytes,
		MaxBodyBytes:    srv.opts.MaxBodyBytes,
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}
