package osimc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// maxProcNetSize caps how much of one /proc/net socket table is read. A
// line is 150 bytes, so this is over 100,000 sockets.
const maxProcNetSize = 16 << 20

// IANA protocol numbers used in Port Filter entries (RFC 5792 §4.2.6).
const (
	protoTCP = 6
	protoUDP = 17
)

// Socket states as /proc/net prints them (include/net/tcp_states.h).
const (
	tcpListen = 0x0A // TCP_LISTEN
	udpClose  = 0x07 // TCP_CLOSE: an unconnected, bound UDP socket
)

// socket is one open port: an IANA protocol number and a port.
type socket struct {
	Proto uint8
	Port  uint16
	Addr  netip.Addr // local address it is bound to
}

// parseProcNet reads a /proc/net/{tcp,tcp6,udp,udp6} table and returns the
// sockets that accept traffic from the network: TCP sockets in LISTEN state
// and unconnected UDP sockets (state CLOSE, remote port 0) with a local
// port. Sockets bound to a loopback address are left out unless
// includeLoopback is set. Malformed lines are skipped.
func parseProcNet(r io.Reader, proto uint8, includeLoopback bool) ([]socket, error) {
	var out []socket
	lr := newLineReader(r, maxProcNetSize)
	defer lr.release()
	first := true
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		if first {
			first = false // the column header
			continue
		}
		s, ok := parseProcNetLine(line, proto)
		if !ok {
			continue
		}
		if !includeLoopback && s.Addr.IsLoopback() {
			continue
		}
		out = append(out, s)
	}
	if err := lr.Err(); err != nil {
		return nil, fmt.Errorf("osimc: proc net: %w", err)
	}
	return out, nil
}

// parseProcNetLine parses "sl local rem st ..." and reports whether the
// line is a well-formed open socket of proto.
func parseProcNetLine(line []byte, proto uint8) (socket, bool) {
	var f [4][]byte
	n := 0
	for _, field := range bytes.Fields(line) {
		f[n] = field
		n++
		if n == len(f) {
			break
		}
	}
	if n < len(f) || !bytes.HasSuffix(f[0], []byte(":")) {
		return socket{}, false
	}
	addr, port, ok := parseHexEndpoint(f[1])
	if !ok || port == 0 {
		return socket{}, false
	}
	_, remPort, ok := parseHexEndpoint(f[2])
	if !ok {
		return socket{}, false
	}
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil {
		return socket{}, false
	}
	switch proto {
	case protoTCP:
		if st != tcpListen {
			return socket{}, false
		}
	case protoUDP:
		if st != udpClose || remPort != 0 {
			return socket{}, false
		}
	default:
		return socket{}, false
	}
	return socket{Proto: proto, Port: port, Addr: addr}, true
}

// parseHexEndpoint parses "0100007F:0016" (IPv4) or 32 hex digits and a
// port (IPv6). The kernel prints each 32-bit word of the address as a
// native-endian integer, so the words are turned back into memory order.
func parseHexEndpoint(b []byte) (netip.Addr, uint16, bool) {
	a, p, ok := bytes.Cut(b, []byte(":"))
	if !ok || len(p) != 4 || (len(a) != 8 && len(a) != 32) {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	var raw [16]byte
	for i := 0; i < len(a)/8; i++ {
		w, err := strconv.ParseUint(string(a[i*8:i*8+8]), 16, 32)
		if err != nil {
			return netip.Addr{}, 0, false
		}
		binary.NativeEndian.PutUint32(raw[i*4:], uint32(w))
	}
	if len(a) == 8 {
		return netip.AddrFrom4([4]byte(raw[:4])), uint16(port), true
	}
	return netip.AddrFrom16(raw).Unmap(), uint16(port), true
}
