package radius

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func TestNewClientsErrors(t *testing.T) {
	s := []byte("s")
	tests := []struct {
		name string
		cs   []ClientConfig
		want string
	}{
		{"empty secret", []ClientConfig{{Name: "a", Network: netip.MustParsePrefix("10.0.0.0/8")}}, "no shared secret"},
		{"invalid prefix", []ClientConfig{{Name: "a", Secret: s}}, "invalid network prefix"},
		{"same prefix", []ClientConfig{
			{Name: "a", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: s},
			{Name: "b", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: s},
		}, "same network"},
		{"same prefix after masking", []ClientConfig{
			{Name: "a", Network: netip.MustParsePrefix("10.1.2.3/8"), Secret: s},
			{Name: "b", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: s},
		}, "same network"},
		{"same prefix, mapped form", []ClientConfig{
			{Name: "a", Network: netip.MustParsePrefix("::ffff:10.0.0.0/104"), Secret: s},
			{Name: "b", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: s},
		}, "same network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClients(tt.cs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewClients error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := NewClients([]ClientConfig{{Name: "a", Network: netip.MustParsePrefix("10.0.0.0/8")}}); !errors.Is(err, ErrNoSecret) {
		t.Errorf("empty secret error %v does not wrap ErrNoSecret", err)
	}
}

func TestClientsLookup(t *testing.T) {
	cs, err := NewClients([]ClientConfig{
		{Name: "net10", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("a")},
		{Name: "net10-1", Network: netip.MustParsePrefix("10.1.0.0/16"), Secret: []byte("b")},
		{Name: "host", Network: netip.MustParsePrefix("10.1.2.3/32"), Secret: []byte("c")},
		{Name: "v6", Network: netip.MustParsePrefix("2001:db8::/32"), Secret: []byte("d")},
		{Name: "v6host", Network: netip.MustParsePrefix("2001:db8::1/128"), Secret: []byte("e")},
		{Name: "all4", Network: netip.MustParsePrefix("0.0.0.0/0"), Secret: []byte("f")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Len() != 6 {
		t.Errorf("Len = %d", cs.Len())
	}
	tests := []struct {
		addr string
		want string // "" for none
	}{
		{"10.1.2.3", "host"},
		{"10.1.2.4", "net10-1"},
		{"10.2.0.1", "net10"},
		{"::ffff:10.1.2.3", "host"},
		{"192.0.2.1", "all4"},
		{"2001:db8::1", "v6host"},
		{"2001:db8::2", "v6"},
		{"2001:db9::1", ""},
		{"fe80::1%eth0", ""},
	}
	for _, tt := range tests {
		got, ok := cs.Lookup(netip.MustParseAddr(tt.addr))
		if tt.want == "" {
			if ok {
				t.Errorf("Lookup(%s) = %s, want none", tt.addr, got.Name)
			}
			continue
		}
		if !ok || got.Name != tt.want {
			t.Errorf("Lookup(%s) = %v, %v; want %s", tt.addr, got, ok, tt.want)
		}
	}
	if _, ok := cs.Lookup(netip.Addr{}); ok {
		t.Error("Lookup(zero Addr) found a client")
	}
	var nilTable *Clients
	if _, ok := nilTable.Lookup(netip.MustParseAddr("10.0.0.1")); ok {
		t.Error("nil table found a client")
	}
}

func TestClientsCopiesInput(t *testing.T) {
	secret := []byte("original")
	in := []ClientConfig{{Name: "a", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: secret}}
	cs, err := NewClients(in)
	if err != nil {
		t.Fatal(err)
	}
	copy(secret, "XXXXXXXX")
	in[0].Name = "changed"
	got, _ := cs.Lookup(netip.MustParseAddr("10.0.0.1"))
	if got.Name != "a" || string(got.Secret) != "original" {
		t.Errorf("table changed with its input: %q %q", got.Name, got.Secret)
	}
}

func TestClientConfigHidesSecret(t *testing.T) {
	c := ClientConfig{Name: "nas1", Network: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("s3cr3t-value")}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "client", c, "ptr", &c)
	outs := []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprintf("%v %+v %#v", &c, &c, &c), buf.String(),
	}
	for _, s := range outs {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, fmt.Sprint([]byte("s3cr3t-value"))) {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "nas1") {
			t.Errorf("name missing: %s", s)
		}
	}
}
