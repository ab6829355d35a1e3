//go:build linux

package eapol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Stats counts a Conn's frames.
type Stats struct {
	Received    uint64 // EAPOL frames delivered to ReadFrom's callers
	Sent        uint64 // frames written
	Malformed   uint64 // frames dropped because they did not decode
	RateLimited uint64 // frames dropped by the per-source rate limit
	OwnSource   uint64 // frames dropped because they claimed this port's own address as source
}

// Conn is an EAPOL port socket: an AF_PACKET SOCK_RAW socket bound to one interface for the PAE
// EtherType, with the PAE group address joined (IEEE 802.1X-2010 §11.1). ReadFrom and WriteTo may
// be called concurrently with each other; ReadFrom is meant for one reader.
type Conn struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
	name    string
	hw      net.HardwareAddr
	lim     *limiter
	rmu     sync.Mutex
	rbuf    []byte

	received, sent, malformed, limited, ownSource atomic.Uint64
}

// readBuf is enough for any Ethernet frame the interface can pass, jumbo frames included.
const readBuf = 1 << 16

// Open opens an EAPOL port socket on the interface ifname (needs CAP_NET_RAW). The socket
// belongs to the network namespace of the calling thread. It starts with DefaultRateLimit.
func Open(ifname string) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("eapol: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("eapol: %s has no Ethernet address", ifname)
	}
	// Protocol 0 until bound, so that no frame of another interface is queued in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("eapol: socket: %w", err)
	}
	fail := func(what string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("eapol: %s on %s: %w", what, ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(EtherType), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mreq.Address[:], PAEGroupAddr)
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("join the PAE group address", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20) // best effort
	f := os.NewFile(uintptr(fd), "eapol:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("eapol: %w", err)
	}
	return &Conn{
		f: f, rc: rc, ifindex: ifi.Index, name: ifname,
		hw:   append(net.HardwareAddr(nil), ifi.HardwareAddr...),
		lim:  newLimiter(DefaultRateLimit, time.Now),
		rbuf: make([]byte, readBuf),
	}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// HardwareAddr is the interface's MAC address, the source of frames written.
func (c *Conn) HardwareAddr() net.HardwareAddr { return c.hw }

// Name is the interface name.
func (c *Conn) Name() string { return c.name }

// SetRateLimit replaces the per-source rate limit and forgets all sources.
func (c *Conn) SetRateLimit(r RateLimit) { c.lim.set(r) }

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Received: c.received.Load(), Sent: c.sent.Load(), Malformed: c.malformed.Load(),
		RateLimited: c.limited.Load(), OwnSource: c.ownSource.Load(),
	}
}

// Close closes the socket; blocked calls return an error.
func (c *Conn) Close() error { return c.f.Close() }

// ReadFrom returns the next well-formed EAPOL frame received on the interface and its source
// address. Frames the host sent itself, frames that do not decode and frames beyond their
// source's rate limit are dropped and counted. It returns when ctx ends, with ctx's error.
func (c *Conn) ReadFrom(ctx context.Context) (net.HardwareAddr, *Frame, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	dl, _ := ctx.Deadline()
	if err := c.f.SetReadDeadline(dl); err != nil {
		return nil, nil, fmt.Errorf("eapol: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, from, err := c.recv()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, nil, cerr
			}
			return nil, nil, fmt.Errorf("eapol: read %s: %w", c.name, err)
		}
		if from.Pkttype == unix.PACKET_OUTGOING {
			continue // our own transmissions, looped back to packet sockets
		}
		b := c.rbuf[:n]
		if n < EthernetHeaderLen {
			c.malformed.Add(1)
			continue
		}
		if string(b[6:12]) == string(c.hw) {
			c.ownSource.Add(1)
			continue
		}
		if !c.lim.allow(b[6:12]) {
			c.limited.Add(1)
			continue
		}
		_, src, f, err := ParseEthernet(b)
		if err != nil {
			c.malformed.Add(1)
			continue
		}
		c.received.Add(1)
		return src, f, nil
	}
}

func (c *Conn) recv() (n int, from *unix.SockaddrLinklayer, err error) {
	var sa unix.Sockaddr
	rerr := c.rc.Read(func(fd uintptr) bool {
		n, sa, err = unix.Recvfrom(int(fd), c.rbuf, 0)
		return !errors.Is(err, unix.EAGAIN)
	})
	if rerr != nil {
		return 0, nil, rerr
	}
	if err != nil {
		return 0, nil, err
	}
	ll, _ := sa.(*unix.SockaddrLinklayer)
	if ll == nil {
		ll = &unix.SockaddrLinklayer{}
	}
	return n, ll, nil
}

// WriteTo sends f to dst (a station's address or PAEGroupAddr) from the interface's address.
func (c *Conn) WriteTo(dst net.HardwareAddr, f *Frame) error {
	b, err := AppendEthernet(make([]byte, 0, EthernetHeaderLen+f.Len()+MinEthernetFrame), dst, c.hw, f)
	if err != nil {
		return err
	}
	if err := c.writeRaw(b); err != nil {
		return err
	}
	c.sent.Add(1)
	return nil
}

// writeRaw sends one complete Ethernet frame.
func (c *Conn) writeRaw(b []byte) error {
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		_, err = unix.Write(int(fd), b)
		return !errors.Is(err, unix.EAGAIN)
	})
	if werr != nil {
		return fmt.Errorf("eapol: write %s: %w", c.name, werr)
	}
	if err != nil {
		return fmt.Errorf("eapol: write %s: %w", c.name, err)
	}
	return nil
}

var _ FrameConn = (*Conn)(nil)
