package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestPortInfoRoundTrip(t *testing.T) {
	for _, p := range []portInfo{
		{Index: 4, Name: "p0", Master: 2, HasProtinfo: true, Locked: true},
		{Index: 5, Name: "veth-long-name1", Master: 9, HasProtinfo: true, Locked: true, MAB: true, Learning: true},
		{Index: 1, Name: "br0"},
		{Index: -1, Name: "", Master: 0, HasProtinfo: true},
	} {
		t.Run(p.Name, func(t *testing.T) {
			b, err := p.appendBinary(nil)
			must(t, err)
			var got portInfo
			must(t, got.unmarshalBinary(b))
			if got != p {
				t.Errorf("round trip: got %+v, want %+v", got, p)
			}
		})
	}
	if _, err := (portInfo{Name: "sixteen-chars-xx"}).appendBinary(nil); err == nil {
		t.Error("encoded a 16-byte interface name")
	}
}

func TestPortInfoMalformed(t *testing.T) {
	good, err := portInfo{Index: 3, Name: "p0", Master: 2, HasProtinfo: true, Locked: true}.appendBinary(nil)
	must(t, err)
	attr := func(typ uint16, val []byte) []byte {
		return append(make([]byte, ifinfomsgLen), appendAttr(nil, typ, val)...)
	}
	lying := slices.Clone(good)
	binary.NativeEndian.PutUint16(lying[ifinfomsgLen:], 200) // first attribute claims 200 bytes
	short := slices.Clone(good)
	binary.NativeEndian.PutUint16(short[ifinfomsgLen:], 2) // shorter than its own header
	many := make([]byte, ifinfomsgLen)
	for range maxPortAttrs + 1 {
		many = appendAttr(many, 99, nil)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short header", good[:ifinfomsgLen-1]},
		{"lying length", lying},
		{"length below header", short},
		{"trailing bytes", append(slices.Clone(good), 1, 2)},
		{"master of 2 bytes", attr(iflaMaster, []byte{1, 2})},
		{"name too long", attr(iflaIfname, []byte("0123456789abcdefg\x00"))},
		{"flag of 4 bytes", attr(iflaProtinfo, appendAttr(nil, brportLocked, []byte{1, 0, 0, 0}))},
		{"nested lying", attr(iflaProtinfo, []byte{50, 0, brportLocked, 0, 1, 0, 0, 0})},
		{"too many attributes", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p portInfo
			if err := p.unmarshalBinary(tc.in); !errors.Is(err, errPortMsg) {
				t.Errorf("unmarshalBinary(%x) = %v, want errPortMsg", tc.in, err)
			}
		})
	}
	// Unknown attributes and an unpadded last attribute are fine.
	var p portInfo
	ok := append(attr(77, []byte{1, 2, 3, 4, 5}), appendAttr(nil, iflaIfname, []byte("x"))[:5]...)
	if err := p.unmarshalBinary(ok); err != nil || p.Name != "x" {
		t.Errorf("unknown attribute, unpadded end: %+v, %v", p, err)
	}
}

func TestIntervalElements(t *testing.T) {
	pp := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		in     []netip.Prefix
		v4, v6 string
	}{
		{"none", nil, "", ""},
		{"host", pp("10.0.0.3/32"), "[10.0.0.3 10.0.0.4)", ""},
		{"unmasked", pp("10.0.0.77/24"), "[10.0.0.0 10.0.1.0)", ""},
		{"nested", pp("10.0.0.0/8", "10.1.2.3/32"), "[10.0.0.0 11.0.0.0)", ""},
		{"adjacent", pp("10.0.0.0/25", "10.0.0.128/25"), "[10.0.0.0 10.0.1.0)", ""},
		{"disjoint sorted", pp("192.0.2.1/32", "10.0.0.1/32"), "[10.0.0.1 10.0.0.2)[192.0.2.1 192.0.2.2)", ""},
		{"everything", pp("0.0.0.0/0", "::/0"), "[0.0.0.0 ∞)", "[:: ∞)"},
		{"top", pp("255.255.255.255/32"), "[255.255.255.255 ∞)", ""},
		{"mixed", pp("2001:db8::/32", "192.0.2.0/24"), "[192.0.2.0 192.0.3.0)", "[2001:db8:: 2001:db9::)"},
		{"4in6", pp("::ffff:192.0.2.0/120"), "[192.0.2.0 192.0.3.0)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6 := intervalElements(tc.in)
			for _, c := range []struct {
				got  string
				want string
			}{{describe(toElems(v4)), tc.v4}, {describe(toElems(v6)), tc.v6}} {
				if c.got != c.want {
					t.Errorf("got %s, want %s", c.got, c.want)
				}
			}
		})
	}
}

type elem struct {
	addr netip.Addr
	end  bool
}

func toElems(els []nftables.SetElement) []elem {
	var out []elem
	for _, el := range els {
		a, _ := netip.AddrFromSlice(el.Key)
		out = append(out, elem{a, el.IntervalEnd})
	}
	return out
}

func describe(els []elem) string {
	s := ""
	for i, e := range els {
		if !e.end {
			s += "[" + e.addr.String()
			if i+1 == len(els) || !els[i+1].end {
				s += " ∞)"
			}
		} else {
			s += " " + e.addr.String() + ")"
		}
	}
	return s
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{Bridge: "br0"}, true},
		{"no bridge", Config{}, false},
		{"long bridge", Config{Bridge: "0123456789abcdef"}, false},
		{"bad prefix", Config{Bridge: "br0", Restricted: []netip.Prefix{{}}}, false},
		{"too many", Config{Bridge: "br0", Restricted: make([]netip.Prefix, maxRestricted+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.validate()
			if (err == nil) != tc.ok {
				t.Fatalf("validate: %v", err)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v is not ErrInvalidConfig", err)
			}
			if err == nil && (c.Table != DefaultTable || c.Logger == nil) {
				t.Errorf("defaults not filled: %+v", c)
			}
		})
	}
}

// TestRules checks the ruleset's shape without a kernel: a fixed number of rules, every lookup
// names a set of the table and every jump a chain of it.
func TestRules(t *testing.T) {
	rs := newRuleset("t")
	rules := rs.rules()
	if want := 1 + 3 + 3 + 4 + 1 + 2*8; len(rules) != want {
		t.Errorf("%d rules, want %d", len(rules), want)
	}
	sets := map[string]bool{}
	for _, s := range rs.sets() {
		sets[s.Name] = true
	}
	chains := map[string]bool{chainForward: true, chainOut: true, chainIn: true}
	for i, r := range rules {
		if !chains[r.Chain.Name] {
			t.Errorf("rule %d in unknown chain %s", i, r.Chain.Name)
		}
		last := r.Exprs[len(r.Exprs)-1]
		if _, ok := last.(*expr.Verdict); !ok {
			t.Errorf("rule %d does not end in a verdict", i)
		}
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Lookup:
				if !sets[e.SetName] {
					t.Errorf("rule %d looks up unknown set %s", i, e.SetName)
				}
			case *expr.Verdict:
				if e.Kind == expr.VerdictJump && !chains[e.Chain] {
					t.Errorf("rule %d jumps to unknown chain %s", i, e.Chain)
				}
			}
		}
	}
	// The first rule drops EAPOL (0x888e in skb->protocol).
	if c, ok := rules[0].Exprs[1].(*expr.Cmp); !ok || !bytes.Equal(c.Data, []byte{0x88, 0x8e}) {
		t.Errorf("first rule is not the EAPOL drop: %v", rules[0].Exprs)
	}
	if got := fmt.Sprint(ifnameFromKey(ifnameKey("p0"))); got != "p0" {
		t.Errorf("ifname key round trip: %q", got)
	}
}
