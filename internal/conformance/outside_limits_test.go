package conformance_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
)

// outsideCounted is what a message counts for in section 8's limits: its
// payload plus 64 bytes.
func outsideCounted(t *testing.T, frames []string) int {
	n := 0
	for _, f := range frames {
		if m, ok := decodeMessage(t, f); ok {
			n += len(m.data) + 64
		}
	}
	return n
}

// TestOutsideLimits checks section 8's limits.
func TestOutsideLimits(t *testing.T) {
	t.Run("body size", func(t *testing.T) {
		c := newOutside(t, &tether.Options{MaxBodyBytes: 1000})
		s := c.negotiate()
		// The server may raise the limit (a message must fit): the
		// negotiated maxBodyBytes is the contract.
		limit := s.MaxBodyBytes
		// A body of size bytes: messages of 900 bytes, then one that
		// fills it up.
		fill := func(size int) (body []byte, messages int) {
			for size-len(body) > 1000 {
				body = append(body, outsideBatch("m"+strings.Repeat("x", 899))...)
				messages++
			}
			n := size - len(body) - 2
			for len(strconv.Itoa(n))+1+n > size-len(body) {
				n--
			}
			return append(body, outsideBatch("m"+strings.Repeat("y", n-1))...), messages + 1
		}
		body, k := fill(limit)
		if len(body) != limit {
			t.Fatal(len(body), limit)
		}
		if a := c.request("POST", "send?"+s.auth()+"&seq=1", nil, body); a.status != 204 {
			t.Errorf("send of maxBodyBytes: %v", a)
		}
		body, _ = fill(limit + 1)
		wantError(t, "send of maxBodyBytes + 1", c.request("POST", "send?"+s.auth()+"&seq="+strconv.Itoa(k+1), nil, body), 413, "body too big")
		// The session is unaffected: k+1 is still the next message.
		if a := c.send(s, "&seq="+strconv.Itoa(k+1), "mnext"); a.status != 204 {
			t.Errorf("send after 413: %v", a)
		}
		a := c.request("GET", "longpoll?"+s.auth()+"&received="+strconv.Itoa(k), nil, nil)
		if a.body != "5:mnext" {
			t.Errorf("poll: %q, want the echo of the message after the 413 alone", a.body)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		c := newOutside(t, &tether.Options{MaxSessions: 2})
		c.negotiate()
		c.negotiate()
		wantError(t, "a third negotiate", c.request("POST", "negotiate?v=1", nil, nil), 503, "too many sessions")
	})
	t.Run("stream byte limit", func(t *testing.T) {
		for _, name := range []string{"sse", "streaming"} {
			c := newOutside(t, &tether.Options{MaxStreamBytes: 8 << 10})
			s := c.negotiate()
			d := c.attach(name, s, "&received=0")
			frames := outsideTexts(20)
			if a := c.send(s, "&seq=1", frames...); a.status != 204 {
				t.Fatal(a)
			}
			got := messagesToEnd(t, d)
			if got < 4 || got >= 20 {
				t.Errorf("%s: a response of MaxStreamBytes 8 KiB carried %d messages of about 1 KiB", name, got)
			}
			d = c.attach(name, s, "&received="+strconv.Itoa(got))
			if f := nextFrame(t, d, "h"); f != frames[got] {
				t.Errorf("%s: next response starts with %.8q, want %.8q", name, f, frames[got])
			}
			// acks=1: no limit.
			d = c.attach(name, s, "&received="+strconv.Itoa(got)+"&acks=1")
			for i := got; i < 20; i++ {
				if f := nextFrame(t, d, "h"); f != frames[i] {
					t.Fatalf("%s acks=1: message %d %.8q", name, i+1, f)
				}
			}
			d.stop()
		}
	})
	t.Run("long-poll batch", func(t *testing.T) {
		c := newOutside(t, &tether.Options{MaxQueuedBytes: 256 << 10})
		s := c.negotiate()
		frames := outsideTexts(200)
		if a := c.send(s, "&seq=1", frames...); a.status != 204 {
			t.Fatal(a)
		}
		received := 0
		for received < 200 {
			a := c.request("GET", "longpoll?"+s.auth()+"&received="+strconv.Itoa(received), nil, nil)
			got, err := outsideParseBatch([]byte(a.body))
			if err != nil {
				t.Fatal(err)
			}
			// All but the last message within half the queue limit:
			// the message that crosses it is the last.
			if len(got) == 0 {
				t.Fatalf("poll: %v, section 8 says at least one message when one is waiting", a)
			}
			if n := outsideCounted(t, got[:len(got)-1]); n > 128<<10 {
				t.Errorf("a poll carried %d bytes of messages (payload + 64) before its last, section 8 says at most half the queue limit, %d", n, 128<<10)
			}
			for _, f := range got {
				if f[0] == 'm' {
					if f != frames[received] {
						t.Fatalf("poll: message %d %.8q", received+1, f)
					}
					received++
				}
			}
		}
	})
	t.Run("batches", func(t *testing.T) {
		// Section 8: a batch of a stream carries at most 64 KiB of
		// messages, one of a WebSocket 256 KiB.
		c := newOutside(t, &tether.Options{MaxQueuedBytes: 2 << 20})
		s := c.negotiate()
		w := c.attachWebSocket(s, "&received=0", "tether.compact")
		frames := outsideTexts(600)
		if a := c.send(s, "&seq=1", frames...); a.status != 204 {
			t.Fatal(a)
		}
		for got := 0; got < 600; {
			w.conn.SetReadDeadline(timeIn())
			typ, p, err := w.conn.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ == ws.TextMessage {
				if p[0] == 'm' {
					got++
				}
				continue
			}
			batch, _ := outsideParseCompact(p)
			if n := outsideCounted(t, batch); n > 256<<10 {
				t.Errorf("a WebSocket batch carried %d bytes of messages", n)
			}
			for _, f := range batch {
				if f[0] == 'm' {
					got++
				}
			}
		}
		// A stream, from 0 again.
		d := c.attachStreaming(s, "&received=0&acks=1")
		for got := 0; got < 600; {
			part := d.pending
			d.pending = nil
			if len(part) == 0 {
				line, err := d.r.ReadString('\n')
				if err != nil || line != "--"+d.boundary+"\r\n" {
					t.Fatalf("stream: %q %v", line, err)
				}
				part = d.part()
			}
			if n := outsideCounted(t, part); n > 64<<10 {
				t.Errorf("a stream's part carried %d bytes of messages", n)
			}
			for _, f := range part {
				if f[0] == 'm' {
					got++
				}
			}
		}
	})
	t.Run("slow consumer", func(t *testing.T) {
		c := newOutside(t, &tether.Options{MaxQueuedBytes: 16 << 10})
		s := c.negotiate()
		w := c.attachWebSocket(s, "&received=0", "")
		frames := outsideTexts(20)
		// One message at a time, never acknowledged: 15 of 1064 bytes
		// fit in 16 KiB, the 16th does not.
		for i, f := range frames {
			w.write(ws.TextMessage, f)
			if i < 15 {
				if got := nextFrame(t, w, "ha"); got != f {
					t.Fatalf("echo %d: %.8q", i+1, got)
				}
				continue
			}
			break
		}
		if got := nextFrame(t, w, "ha"); got != "c4002 slow consumer" {
			t.Errorf("after 15 unacknowledged messages: %.20q, section 5.1 says c4002 slow consumer", got)
		}
		if _, err := w.next(); err != io.EOF || w.closeCode != 4002 {
			t.Errorf("WebSocket close %d %q", w.closeCode, w.closeText)
		}
	})
	t.Run("slow consumer on a stream with acks=1", func(t *testing.T) {
		c := newOutside(t, &tether.Options{MaxQueuedBytes: 16 << 10})
		s := c.negotiate()
		d := c.attach("sse", s, "&received=0&acks=1")
		frames := outsideTexts(20)
		if a := c.send(s, "&seq=1", frames...); a.status != 204 {
			t.Fatal(a)
		}
		// Section 4.5: the queue bounds what goes unacknowledged.
		for i := range 15 {
			if f := nextFrame(t, d, "h"); f != frames[i] {
				t.Fatalf("message %d: %.8q", i+1, f)
			}
		}
		if f := nextFrame(t, d, "h"); f != "c4002 slow consumer" {
			t.Errorf("after 15 messages: %.20q, section 4.5 says the queue bounds an acks=1 stream (4002)", f)
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		c := newOutside(t, nil)
		s := c.negotiate()
		// A body of unknown length goes chunked.
		post := func(seq int, body []byte) outsideAnswer {
			ctx, cancel := context.WithTimeout(context.Background(), outsideTimeout)
			defer cancel()
			req := c.newRequest(ctx, "POST", "send?"+s.auth()+"&seq="+strconv.Itoa(seq), nil, nil)
			req.Body = io.NopCloser(bytes.NewReader(body))
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return outsideAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
		}
		var body []byte
		for len(body)+905 <= s.MaxBodyBytes {
			body = append(body, outsideBatch("m"+strings.Repeat("x", 900))...)
		}
		if a := post(1, body); a.status != 204 {
			t.Errorf("a chunked send within maxBodyBytes: %v", a)
		}
		for len(body) <= s.MaxBodyBytes {
			body = append(body, outsideBatch("h")...)
		}
		wantError(t, "a chunked send over maxBodyBytes", post(1, body), 413, "body too big")
	})
	t.Run("slow consumer on longpoll", func(t *testing.T) {
		c := newOutside(t, &tether.Options{MaxQueuedBytes: 16 << 10})
		s := c.negotiate()
		frames := outsideTexts(20)
		// 20 echoes never polled: 15 fit, then the close frame comes
		// after them (section 5.1).
		if a := c.send(s, "&seq=1", frames...); a.status != 204 {
			t.Fatal(a)
		}
		d := c.attach("longpoll", s, "&received=0")
		for i := range 15 {
			if f := nextFrame(t, d, "h"); f != frames[i] {
				t.Fatalf("message %d: %.8q", i+1, f)
			}
		}
		if f := nextFrame(t, d, "h"); f != "c4002 slow consumer" {
			t.Errorf("after 15 messages: %.20q, section 5.1 says c4002 slow consumer", f)
		}
	})

}

func timeIn() time.Time { return time.Now().Add(outsideTimeout) }

// outsideTexts returns n text message frames of 1,000 bytes of text each.
func outsideTexts(n int) []string {
	frames := make([]string, n)
	for i := range frames {
		frames[i] = "m" + strconv.Itoa(i%10) + strings.Repeat("x", 999)
	}
	return frames
}

// messagesToEnd reads d to its end and returns how many message frames
// it carried.
func messagesToEnd(t *testing.T, d outsideDown) int {
	t.Helper()
	got := 0
	for {
		f, err := d.next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := decodeMessage(t, f); ok {
			got++
		}
	}
}

// TestOutsideStreamByteLimitBytes checks section 4.5's byte limit to the
// byte: a response ends once it has carried MaxStreamBytes, the last batch
// going over, not before.
func TestOutsideStreamByteLimitBytes(t *testing.T) {
	const limit = 8 << 10
	c := newOutside(t, &tether.Options{MaxStreamBytes: limit})
	s := c.negotiate()
	resp, stop := c.openStream("streaming", s, "&received=0")
	defer stop()
	boundary := outsideBoundary.FindStringSubmatch(resp.Header.Get("Content-Type"))[1]
	if a := c.send(s, "&seq=1", outsideTexts(20)...); a.status != 204 {
		t.Fatal(a)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	closing := "--" + boundary + "--\r\n"
	if !strings.HasSuffix(string(body), closing) {
		t.Fatalf("the response ends with %q, section 4.5 says cleanly", body[max(0, len(body)-40):])
	}
	carried := len(body) - len(closing)
	lastPart := strings.LastIndex(string(body[:carried]), "--"+boundary+"\r\n")
	if carried < limit || lastPart >= limit {
		t.Errorf("a response of MaxStreamBytes %d carried %d bytes, %d before its last part; section 4.5 says it ends once it has carried the limit, the last batch going over", limit, carried, lastPart)
	}
}
