package wire_test

import (
	"bytes"
	"testing"

	"github.com/tetherkit/tether/wire"
)

// The codec's cost per message: encoding into a reused buffer and parsing
// must not allocate (base64 decoding allocates the decoded payload).

var (
	benchText   = wire.Message{Type: wire.Text, Data: bytes.Repeat([]byte("x"), 64)}
	benchBinary = wire.Message{Type: wire.Binary, Data: bytes.Repeat([]byte{0xfe}, 64)}
)

func BenchmarkAppendMessage(b *testing.B) {
	for _, bc := range []struct {
		name string
		enc  wire.Encoding
		m    wire.Message
	}{
		{"raw/text", wire.RawEncoding, benchText},
		{"raw/binary", wire.RawEncoding, benchBinary},
		{"textonly/binary", wire.TextOnlyEncoding, benchBinary},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.m.Data)))
			var buf []byte
			for b.Loop() {
				buf = bc.enc.AppendMessage(buf[:0], bc.m)
			}
		})
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	msgs := make([]wire.Message, 32)
	for i := range msgs {
		msgs[i] = benchText
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs) * len(benchText.Data)))
	var buf, ack []byte
	for b.Loop() {
		buf = buf[:0]
		for _, m := range msgs {
			buf = wire.RawEncoding.AppendBatchMessage(buf, m, nil)
		}
		ack = wire.AppendAck(ack[:0], 12345)
		buf = wire.AppendBatchFrame(buf, ack)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
}

func BenchmarkParseFrame(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    []byte
	}{
		{"text", wire.RawEncoding.AppendMessage(nil, benchText)},
		{"binary-base64", wire.TextOnlyEncoding.AppendMessage(nil, benchBinary)},
		{"ack", wire.AppendAck(nil, 123456)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.ParseFrame(bc.p, 1<<16); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseBatch(b *testing.B) {
	var body []byte
	const n = 32
	for range n {
		body = wire.RawEncoding.AppendBatchMessage(body, benchText, nil)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	count := 0
	fn := func(f wire.Frame) error { count++; return nil }
	for b.Loop() {
		if err := wire.ParseBatch(body, 1<<16, fn); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}
