package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Names of the nftables objects in the table. The role sets are named after the roles.
const (
	setPorts     = "ports"          // ifname: managed (locked) bridge ports
	setAllowed4  = "allowed4"       // ipv4_addr interval: Config.Restricted, IPv4 part
	setAllowed6  = "allowed6"       // ipv6_addr interval: Config.Restricted, IPv6 part
	chainForward = "forward"        // base chain, hook forward
	chainOut     = "restricted-out" // frames from an endpoint in a restricted role
	chainIn      = "restricted-in"  // frames to an endpoint in a restricted role
)

// Protocol numbers matched by the rules.
const (
	etherTypeIPv4  = 0x0800 // IEEE 802 EtherType registry
	etherTypeARP   = 0x0806
	etherTypeIPv6  = 0x86dd
	etherTypeEAPOL = 0x888e // IEEE 802.1X-2020 §11.1.4
	protoTCP       = 6
	protoUDP       = 17
	protoICMPv6    = 58
	portDNS        = 53  // RFC 1035 §4.2
	portBOOTPS     = 67  // RFC 2131 §4.1
	portBOOTPC     = 68  // RFC 2131 §4.1
	icmp6RS        = 133 // RFC 4861 §4: router solicitation ... neighbor advertisement (136)
	icmp6NA        = 136
)

// ruleset holds the nftables objects of one table; the same values serve for building the
// ruleset and for naming sets in later transactions.
type ruleset struct {
	table    *nftables.Table
	ports    *nftables.Set
	allowed4 *nftables.Set
	allowed6 *nftables.Set
	roles    map[string]*nftables.Set
	forward  *nftables.Chain
	out, in  *nftables.Chain
}

func newRuleset(name string) *ruleset {
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyBridge}
	rs := &ruleset{
		table:    t,
		ports:    &nftables.Set{Table: t, Name: setPorts, KeyType: nftables.TypeIFName},
		allowed4: &nftables.Set{Table: t, Name: setAllowed4, KeyType: nftables.TypeIPAddr, Interval: true},
		allowed6: &nftables.Set{Table: t, Name: setAllowed6, KeyType: nftables.TypeIP6Addr, Interval: true},
		roles:    make(map[string]*nftables.Set, len(allRoles)),
	}
	for _, r := range allRoles {
		// flags timeout: a binding's Expires becomes the element's timeout, so the kernel ends
		// the session on its own (fail closed) even when the PEP is gone.
		rs.roles[r] = &nftables.Set{Table: t, Name: r, KeyType: nftables.TypeEtherAddr, HasTimeout: true}
	}
	// Set IDs name the sets to the rules of the same transaction. Given here, they spare
	// nftables.Conn.AddSet its package-wide counter, which it updates under a per-Conn lock
	// only (a data race between two enforcers in one process).
	for i, s := range rs.sets() {
		s.ID = uint32(i + 1)
	}
	accept := nftables.ChainPolicyAccept
	rs.forward = &nftables.Chain{
		Name: chainForward, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	}
	rs.out = &nftables.Chain{Name: chainOut, Table: t}
	rs.in = &nftables.Chain{Name: chainIn, Table: t}
	return rs
}

// install queues, for one transaction, everything that makes the table match cfg: table, sets
// and chains are created when missing (existing ones are kept with their elements), the chains'
// rules are flushed and re-added and the allowed sets are refilled. Role and port sets keep their
// contents.
func (rs *ruleset) install(c *nftables.Conn, restricted []netip.Prefix) error {
	c.AddTable(rs.table)
	for _, s := range rs.sets() {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("bridge: set %s: %w", s.Name, err)
		}
	}
	for _, ch := range []*nftables.Chain{rs.out, rs.in, rs.forward} {
		c.AddChain(ch)
		c.FlushChain(ch)
	}
	c.FlushSet(rs.allowed4)
	c.FlushSet(rs.allowed6)
	v4, v6 := intervalElements(restricted)
	if len(v4) > 0 {
		if err := c.SetAddElements(rs.allowed4, v4); err != nil {
			return fmt.Errorf("bridge: set %s: %w", setAllowed4, err)
		}
	}
	if len(v6) > 0 {
		if err := c.SetAddElements(rs.allowed6, v6); err != nil {
			return fmt.Errorf("bridge: set %s: %w", setAllowed6, err)
		}
	}
	for _, r := range rs.rules() {
		c.AddRule(r)
	}
	return nil
}

// sets returns every named set of the table.
func (rs *ruleset) sets() []*nftables.Set {
	s := []*nftables.Set{rs.ports, rs.allowed4, rs.allowed6}
	for _, r := range allRoles {
		s = append(s, rs.roles[r])
	}
	return s
}

// rules returns the rules of all three chains. Their number does not depend on the endpoints:
//
//	forward:        meta protocol 0x888e drop                      (EAPOL is never forwarded)
//	                ether saddr @<restricted role> jump restricted-out   (×3)
//	                ether daddr @<restricted role> jump restricted-in    (×3)
//	                ether saddr @<role> accept                            (×4)
//	                iifname @ports drop                             (managed port, unbound MAC)
//	                policy accept                                   (unmanaged to unmanaged)
//	restricted-out: ARP, udp dport 67-68, udp/tcp dport 53, ip daddr @allowed4,
//	                ip6 daddr @allowed6, ICMPv6 ND → return; else drop
//	restricted-in:  ARP, udp sport 67-68, udp/tcp sport 53, ip saddr @allowed4,
//	                ip6 saddr @allowed6, ICMPv6 ND → return; else drop
func (rs *ruleset) rules() []*nftables.Rule {
	var out []*nftables.Rule
	add := func(ch *nftables.Chain, exprs ...expr.Any) {
		out = append(out, &nftables.Rule{Table: rs.table, Chain: ch, Exprs: exprs})
	}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	ret := &expr.Verdict{Kind: expr.VerdictReturn}

	add(rs.forward, append(matchProtocol(etherTypeEAPOL), drop)...)
	for _, r := range restrictedRoles {
		add(rs.forward, append(matchMAC(6, rs.roles[r]), &expr.Verdict{Kind: expr.VerdictJump, Chain: chainOut})...)
	}
	for _, r := range restrictedRoles {
		add(rs.forward, append(matchMAC(0, rs.roles[r]), &expr.Verdict{Kind: expr.VerdictJump, Chain: chainIn})...)
	}
	for _, r := range allRoles {
		add(rs.forward, append(matchMAC(6, rs.roles[r]), accept)...)
	}
	add(rs.forward,
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: rs.ports.Name, SetID: rs.ports.ID},
		drop)

	// The two restricted chains differ only in the direction: destination port and address
	// for frames from the endpoint, source port and address for frames to it.
	for _, d := range []struct {
		ch      *nftables.Chain
		portOff uint32 // offset of the port in the UDP/TCP header
		ip4Off  uint32 // offset of the address in the IPv4 header
		ip6Off  uint32 // offset of the address in the IPv6 header
	}{
		{rs.out, 2, 16, 24},
		{rs.in, 0, 12, 8},
	} {
		add(d.ch, append(matchProtocol(etherTypeARP), ret)...)
		add(d.ch, append(matchL4Port(protoUDP, d.portOff, portBOOTPS, portBOOTPC), ret)...)
		add(d.ch, append(matchL4Port(protoUDP, d.portOff, portDNS, portDNS), ret)...)
		add(d.ch, append(matchL4Port(protoTCP, d.portOff, portDNS, portDNS), ret)...)
		add(d.ch, append(matchProtocol(etherTypeIPv4),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: d.ip4Off, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: rs.allowed4.Name, SetID: rs.allowed4.ID},
			ret)...)
		add(d.ch, append(matchProtocol(etherTypeIPv6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: d.ip6Off, Len: 16},
			&expr.Lookup{SourceRegister: 1, SetName: rs.allowed6.Name, SetID: rs.allowed6.ID},
			ret)...)
		add(d.ch, append(matchProtocol(etherTypeIPv6),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoICMPv6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{icmp6RS}, ToData: []byte{icmp6NA}},
			ret)...)
		add(d.ch, drop)
	}
	return out
}

// matchProtocol matches skb->protocol (meta protocol), which, unlike the Ethernet header's
// type field, is not hidden behind a VLAN tag the bridge put on the frame.
func matchProtocol(etherType uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(etherType >> 8), byte(etherType)}},
	}
}

// matchMAC matches the Ethernet source (off 6) or destination (off 0) address against a set.
func matchMAC(off uint32, s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: off, Len: 6},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
}

// matchL4Port matches a TCP or UDP port (at portOff in the transport header) in [lo, hi].
func matchL4Port(proto byte, portOff uint32, lo, hi uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
		&expr.Range{Op: expr.CmpOpEq, Register: 1,
			FromData: []byte{byte(lo >> 8), byte(lo)}, ToData: []byte{byte(hi >> 8), byte(hi)}},
	}
}

// addrRange is an inclusive address range.
type addrRange struct{ from, to netip.Addr }

// mergeRanges turns prefixes into sorted, non-overlapping, non-adjacent inclusive ranges of
// one address family, as an nftables interval set requires.
func mergeRanges(ps []netip.Prefix, want4 bool) []addrRange {
	var rs []addrRange
	for _, p := range ps {
		p = p.Masked()
		a := p.Addr().Unmap()
		if a.Is4() != want4 {
			continue
		}
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
			if bits < 0 {
				bits = 0
			}
		}
		rs = append(rs, addrRange{a, lastAddr(netip.PrefixFrom(a, bits))})
	}
	slices.SortFunc(rs, func(x, y addrRange) int { return x.from.Compare(y.from) })
	var merged []addrRange
	for _, r := range rs {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			next := last.to.Next()
			if !next.IsValid() || r.from.Compare(next) <= 0 { // overlaps or touches
				if r.to.Compare(last.to) > 0 {
					last.to = r.to
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	return merged
}

// lastAddr returns the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// intervalElements turns the restricted prefixes into interval set elements: a start element
// per range and an interval-end element one past its end (omitted at the top of the space).
func intervalElements(ps []netip.Prefix) (v4, v6 []nftables.SetElement) {
	conv := func(rs []addrRange) []nftables.SetElement {
		var els []nftables.SetElement
		for _, r := range rs {
			els = append(els, nftables.SetElement{Key: r.from.AsSlice()})
			if end := r.to.Next(); end.IsValid() {
				els = append(els, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
			}
		}
		return els
	}
	return conv(mergeRanges(ps, true)), conv(mergeRanges(ps, false))
}

// ifnameKey is the key of an interface name in an ifname set: IFNAMSIZ bytes, NUL padded.
func ifnameKey(name string) []byte {
	k := make([]byte, ifNameSize)
	copy(k, name)
	return k
}

// ifnameFromKey is the inverse of ifnameKey.
func ifnameFromKey(k []byte) string {
	for i, c := range k {
		if c == 0 {
			return string(k[:i])
		}
	}
	return string(k)
}

// macKey copies a MAC into a set key.
func macKey(mac net.HardwareAddr) []byte { return slices.Clone([]byte(mac)) }
