package controller

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// etherTypeARP is the ARP EtherType (RFC 826).
const etherTypeARP = 0x0806

// ParseARP reads the sender of an Ethernet frame carrying an IPv4-over-Ethernet ARP packet
// (RFC 826): the frame's source MAC, the ARP sender hardware address and sender protocol
// address. ok is false for anything else, and when the two MACs differ (a relayed or forged
// packet says nothing about the port's endpoint) or the sender address is unspecified (an
// ARP probe, RFC 5227 §2.1.1).
func ParseARP(frame []byte) (src net.HardwareAddr, ip netip.Addr, ok bool) {
	const eth, arp = 14, 28
	if len(frame) < eth+arp || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return nil, netip.Addr{}, false
	}
	a := frame[eth:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return nil, netip.Addr{}, false
	}
	if op := binary.BigEndian.Uint16(a[6:8]); op != 1 && op != 2 {
		return nil, netip.Addr{}, false
	}
	sha := a[8:14]
	for i := range 6 {
		if sha[i] != frame[6+i] {
			return nil, netip.Addr{}, false
		}
	}
	spa := netip.AddrFrom4([4]byte(a[14:18]))
	if spa.IsUnspecified() || spa.IsMulticast() || spa == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || sha[0]&1 != 0 {
		return nil, netip.Addr{}, false
	}
	return net.HardwareAddr(append([]byte(nil), sha...)), spa, true
}

// snoopARP runs snoopARPOnce again after a failure (a link that went down) until ctx ends.
func (c *Controller) snoopARP(ctx context.Context, portName string, index int) {
	for ctx.Err() == nil {
		c.snoopARPOnce(ctx, portName, index)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// snoopARPOnce learns the IPv4 address of the endpoints bound on a port from the ARP packets they
// send, and reports a new or changed address in an Interim-Update (Framed-IP-Address), so the
// PDP can find the session of an endpoint it assessed over IP.
func (c *Controller) snoopARPOnce(ctx context.Context, portName string, index int) {
	// ETH_P_ALL: a socket for ETH_P_ARP would only see what the bridge passes up to the port
	// device, not the frames it forwards. A classic BPF filter keeps only ARP.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		c.log.Warn("ARP snooping off", "port", portName, "err", err)
		return
	}
	defer unix.Close(fd)
	filter := []unix.SockFilter{
		{Code: 0x28, K: 12},                         // ldh [12]
		{Code: 0x15, Jt: 0, Jf: 1, K: etherTypeARP}, // jeq #0x806
		{Code: 0x06, K: 256},                        // ret #256
		{Code: 0x06, K: 0},                          // ret #0
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		c.log.Warn("ARP snooping off", "port", portName, "err", err)
		return
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		c.log.Warn("ARP snooping off", "port", portName, "err", err)
		return
	}
	tv := unix.NsecToTimeval((500 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 256)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			c.log.Debug("ARP snooping interrupted", "port", portName, "err", err)
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		mac, ip, ok := ParseARP(buf[:n])
		if !ok {
			continue
		}
		c.learnIP(portName, mac, ip)
	}
}

// arpSeen is the last address a MAC announced on a port, kept for the session that may start
// a moment later (the endpoint's first ARP is what the kernel reports for MAB).
type arpSeen struct {
	port string
	ip   netip.Addr
	at   time.Time
}

// maxARPSeen caps the ARP cache.
const maxARPSeen = 4096

func (c *Controller) learnIP(portName string, mac net.HardwareAddr, ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.arp) >= maxARPSeen {
		clear(c.arp)
	}
	c.arp[mac.String()] = arpSeen{port: portName, ip: ip, at: time.Now()}
	s := c.sessions[mac.String()]
	if s == nil || s.Port != portName || s.IP == ip {
		return
	}
	s.IP = ip
	c.st.ipLearned.Add(1)
	c.log.Info("endpoint address learned", "port", portName, "mac", mac.String(), "ip", ip.String(), "session", s.ID)
	c.saveLocked()
	c.queueAcct(c.record(s, AcctInterim))
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
