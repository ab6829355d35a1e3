package bridge

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"trustnac/pep"
)

// TestEAPOLReachesHost checks the locked-port semantics the authenticator relies on: an
// EAPOL-Start sent by an unbound endpoint on a locked port arrives at the host on the port's
// interface, and is forwarded to no other port, bound or not.
func TestEAPOLReachesHost(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2)
	e := l.newEnforcer(l.config())
	must(t, e.Lock(bg, "p0"))
	must(t, e.Lock(bg, "p1"))
	must(t, e.Bind(bg, pep.Binding{Port: "p1", MAC: l.eps[1].MAC, Role: RoleAdmit}))

	var onPort, onPeer int
	inNS(t, l.host, func() { onPort = packetSocket(t, "p0") })
	defer unix.Close(onPort)
	inNS(t, l.eps[1].NS, func() { onPeer = packetSocket(t, "e1") })
	defer unix.Close(onPeer)

	// EAPOL-Start (IEEE 802.1X-2020 §11.3: version 2, type 1, length 0) to the PAE group address.
	pae := []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x03}
	frame := append(append(append([]byte{}, pae...), l.eps[0].MAC...), 0x88, 0x8e, 2, 1, 0, 0)
	frame = append(frame, make([]byte, 60-len(frame))...)
	inNS(t, l.eps[0].NS, func() {
		fd := packetSocket(t, "e0")
		defer unix.Close(fd)
		idx := ifIndexByName(t, "e0")
		sa := &unix.SockaddrLinklayer{Protocol: htons(etherTypeEAPOL), Ifindex: idx, Halen: 6}
		copy(sa.Addr[:], pae)
		must(t, unix.Sendto(fd, frame, 0, sa))
	})
	if got := recvFrame(onPort); !bytes.Equal(got, frame) {
		t.Errorf("host on p0 received %x, want the EAPOL-Start %x", got, frame)
	}
	if got := recvFrame(onPeer); got != nil {
		t.Errorf("EAPOL forwarded to the other port: %x", got)
	}
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// ifIndexByName looks an interface up in the current thread's namespace.
func ifIndexByName(t *testing.T, name string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(name)
	must(t, err)
	return ifi.Index
}

// packetSocket opens an AF_PACKET socket for EAPOL frames on an interface of the current
// namespace, with a short receive timeout.
func packetSocket(t *testing.T, ifname string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(etherTypeEAPOL)))
	must(t, err)
	must(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherTypeEAPOL), Ifindex: ifIndexByName(t, ifname)}))
	tv := unix.NsecToTimeval(int64(300 * time.Millisecond))
	must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	return fd
}

// recvFrame returns the next frame, or nil after the receive timeout.
func recvFrame(fd int) []byte {
	buf := make([]byte, 1600)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return nil
	}
	return buf[:n]
}
