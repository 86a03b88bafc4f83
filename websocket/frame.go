package websocket

// appendFrameHeader appends the header of an unmasked, final WebSocket
// frame (RFC 6455, section 5.2) with opcode op and a payload of n bytes:
// what a server sends for a message in one frame.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, 127,
		byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
