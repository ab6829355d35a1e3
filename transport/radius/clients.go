package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
)

// maxClients caps the size of a Clients table.
const maxClients = 1 << 16

// ClientConfig is one NAS (RADIUS client, RFC 2865 §1.1) the server accepts:
// datagrams whose source address lies in Network are verified with Secret
// (RFC 2865 §3, "shared secret").
//
// Its String, GoString and LogValue methods leave the secret out, so a
// ClientConfig can be printed and logged.
type ClientConfig struct {
	Name    string
	Network netip.Prefix // source addresses of this NAS, e.g. 127.0.0.1/32 or 10.0.0.0/24
	Secret  []byte
}

// String describes c without its secret.
func (c ClientConfig) String() string { return fmt.Sprintf("%s(%s)", c.Name, c.Network) }

// GoString describes c without its secret.
func (c ClientConfig) GoString() string {
	return fmt.Sprintf("radius.ClientConfig{Name: %q, Network: %s}", c.Name, c.Network)
}

// LogValue implements slog.LogValuer without the secret.
func (c ClientConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("network", c.Network.String()))
}

// clientEntry is a ClientConfig with its pooled keyed HMAC-MD5 states.
type clientEntry struct {
	cfg  ClientConfig
	macs sync.Pool // *macState keyed with cfg.Secret
}

// macState is a keyed HMAC-MD5 (or, in md5Pool, a plain MD5) with buffers
// for its sum and for an authenticator to hash.
type macState struct {
	h    hash.Hash
	sum  [md5.Size]byte
	auth [16]byte
}

func (e *clientEntry) getMAC() *macState {
	if m, ok := e.macs.Get().(*macState); ok {
		m.h.Reset()
		return m
	}
	return &macState{h: hmac.New(md5.New, e.cfg.Secret)}
}

func (e *clientEntry) putMAC(m *macState) { e.macs.Put(m) }

// Clients finds the NAS of a source address; the longest matching prefix
// wins. It is immutable after NewClients and safe for concurrent use.
type Clients struct {
	v4, v6 []prefixLevel // by prefix length, longest first
	n      int
}

type prefixLevel struct {
	bits int
	m    map[netip.Prefix]*clientEntry
}

// NewClients builds the table. It copies cs. It fails on an invalid
// prefix, an empty secret, or two entries with the same prefix.
func NewClients(cs []ClientConfig) (*Clients, error) {
	if len(cs) > maxClients {
		return nil, fmt.Errorf("radius: %d clients exceed the limit of %d", len(cs), maxClients)
	}
	c := &Clients{n: len(cs)}
	seen := make(map[netip.Prefix]string, len(cs))
	for i, cc := range cs {
		if !cc.Network.IsValid() {
			return nil, fmt.Errorf("radius: client %d (%q): invalid network prefix", i, cc.Name)
		}
		if len(cc.Secret) == 0 {
			return nil, fmt.Errorf("radius: client %d (%q): %w", i, cc.Name, ErrNoSecret)
		}
		p := normalizePrefix(cc.Network)
		if other, dup := seen[p]; dup {
			return nil, fmt.Errorf("radius: clients %q and %q: same network %s", other, cc.Name, p)
		}
		seen[p] = cc.Name
		e := &clientEntry{cfg: ClientConfig{Name: cc.Name, Network: p, Secret: slices.Clone(cc.Secret)}}
		levels := &c.v6
		if p.Addr().Is4() {
			levels = &c.v4
		}
		*levels = addLevel(*levels, p, e)
	}
	return c, nil
}

// normalizePrefix masks p and turns an IPv4-mapped IPv6 prefix of at
// least 96 bits into its IPv4 form, so that it matches IPv4 sources.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

func addLevel(levels []prefixLevel, p netip.Prefix, e *clientEntry) []prefixLevel {
	for i := range levels {
		if levels[i].bits == p.Bits() {
			levels[i].m[p] = e
			return levels
		}
	}
	levels = append(levels, prefixLevel{bits: p.Bits(), m: map[netip.Prefix]*clientEntry{p: e}})
	slices.SortFunc(levels, func(a, b prefixLevel) int { return b.bits - a.bits })
	return levels
}

// Len returns the number of clients in the table.
func (c *Clients) Len() int {
	if c == nil {
		return 0
	}
	return c.n
}

// Lookup returns the NAS whose network holds addr (an IPv4-mapped IPv6
// address counts as IPv4), preferring the longest prefix. The result must
// not be modified.
func (c *Clients) Lookup(addr netip.Addr) (*ClientConfig, bool) {
	e := c.lookup(addr)
	if e == nil {
		return nil, false
	}
	return &e.cfg, true
}

func (c *Clients) lookup(addr netip.Addr) *clientEntry {
	if c == nil || !addr.IsValid() {
		return nil
	}
	addr = addr.Unmap().WithZone("")
	levels := c.v6
	if addr.Is4() {
		levels = c.v4
	}
	for _, l := range levels {
		p, err := addr.Prefix(l.bits)
		if err != nil {
			continue
		}
		if e, ok := l.m[p]; ok {
			return e
		}
	}
	return nil
}

var errNilClients = errors.New("radius: server has no Clients table")
