package session

// ConnectionEvent is a change of the connection that carries a session to
// its client, as OnConnection reports it: a connection attached (Transport
// names it), or the attached one ended with none taking its place
// (Transport is "").
type ConnectionEvent struct {
	// Transport is the transport of the connection attached now, or ""
	// when the connection of Previous ended and none is attached.
	Transport string
	// Previous is the transport of the connection before this one: the
	// one it superseded, or the session's last one when none was
	// attached; "" before the first. So the transport changed when
	// Transport is neither "" nor Previous.
	Previous string
}

// OnConnection arranges for fn to be called for every ConnectionEvent of
// the session from now on, in order, one call at a time, on a goroutine
// that runs while events wait (none while there are none): fn may call
// the session. If a connection is attached already, the first event
// reports it (with Previous ""). Long polling attaches a connection per
// poll and ends it when the poll is answered, so a session on it reports
// an attach and a detach per poll; an application that shows the
// transport in use looks for a change (Transport neither "" nor
// Previous). Events stop once the session has finished (OnClose tells of
// that). OnConnection may be called once; later calls are ignored.
func (s *Session) OnConnection(fn func(ConnectionEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onConnection != nil || s.finished {
		return
	}
	s.onConnection = fn
	if s.transport != "" {
		s.connectionEventLocked(ConnectionEvent{Transport: s.transport})
	}
}

// connectionEventLocked queues e for the OnConnection function, if there is
// one, and starts the goroutine that calls it unless it runs already.
func (s *Session) connectionEventLocked(e ConnectionEvent) {
	if s.onConnection == nil {
		return
	}
	s.connEvents = append(s.connEvents, e)
	if !s.connEventsRunning {
		s.connEventsRunning = true
		go s.runConnectionEvents(s.onConnection)
	}
}

// runConnectionEvents calls fn for each queued event until none is left.
func (s *Session) runConnectionEvents(fn func(ConnectionEvent)) {
	for {
		s.mu.Lock()
		if len(s.connEvents) == 0 || s.finished {
			s.connEvents = nil
			s.connEventsRunning = false
			s.mu.Unlock()
			return
		}
		e := s.connEvents[0]
		s.connEvents = s.connEvents[1:]
		s.mu.Unlock()
		fn(e)
	}
}
