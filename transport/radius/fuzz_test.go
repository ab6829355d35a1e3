package radius

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	radius "layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// fuzzSources are the source addresses FuzzServerPacket picks from: the
// "nas" client, the "lab" client (another secret) and an unknown address.
var fuzzSources = []netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.1:40000"),
	netip.MustParseAddrPort("10.1.2.3:40000"),
	netip.MustParseAddrPort("192.0.2.1:40000"),
}

// refValid reports whether b is a well-formed RADIUS packet by RFC 2865 §3
// and §5, independently of checkPacket, and returns it cut to Length.
func refValid(b []byte) ([]byte, bool) {
	if len(b) < 20 || len(b) > 4096 {
		return nil, false
	}
	l := int(binary.BigEndian.Uint16(b[2:4]))
	if l < 20 || l > len(b) {
		return nil, false
	}
	b = b[:l]
	for off := 20; off < l; {
		if off+2 > l || b[off+1] < 2 || off+int(b[off+1]) > l {
			return nil, false
		}
		if b[off] == 80 && b[off+1] != 18 {
			return nil, false
		}
		off += int(b[off+1])
	}
	return b, true
}

// refRequestAuthentic reports whether the well-formed request pkt verifies
// with secret by the reference functions.
func refRequestAuthentic(pkt, secret []byte) bool {
	mas := refAttrs(pkt, 80)
	switch radius.Code(pkt[0]) {
	case radius.CodeAccessRequest, radius.CodeStatusServer:
		return len(mas) == 1 && bytes.Equal(mas[0], refMA(pkt, secret, nil))
	case radius.CodeAccountingRequest, radius.CodeCoARequest, radius.CodeDisconnectRequest:
		if !bytes.Equal(pkt[4:20], refAuth(pkt, secret, make([]byte, 16))) {
			return false
		}
		return len(mas) == 0 || len(mas) == 1 && bytes.Equal(mas[0], refMA(pkt, secret, make([]byte, 16)))
	}
	return false
}

func fuzzHandler(ctx context.Context, r *Request) *radius.Packet {
	switch rfc2865.UserName_GetString(r.Packet) {
	case "panic":
		panic("fuzz")
	case "drop":
		return nil
	}
	return accept(ctx, r)
}

// FuzzServerPacket feeds datagrams to the server's per-datagram path with
// a real Clients table and Handler, twice each. It checks that nothing
// panics, that a reply comes only for a datagram that verifies by the
// reference functions from a known client, that the reply verifies, and
// that the retransmission gets the identical reply.
func FuzzServerPacket(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, src uint8) {
		from := fuzzSources[int(src)%len(fuzzSources)]
		var calls int
		s := &Server{
			Clients: testClients(t),
			Codes: []radius.Code{radius.CodeAccessRequest, radius.CodeStatusServer,
				radius.CodeAccountingRequest, radius.CodeCoARequest, radius.CodeDisconnectRequest},
			Handler: HandlerFunc(func(ctx context.Context, r *Request) *radius.Packet {
				calls++
				return fuzzHandler(ctx, r)
			}),
			spawn: func(job func()) { job() },
		}
		if err := s.init(); err != nil {
			t.Fatal(err)
		}
		snd := &captureSender{}
		s.handleDatagram(bytes.Clone(data), from, nil, snd)
		s.handleDatagram(bytes.Clone(data), from, nil, snd)
		snap := s.Snapshot()
		if snap["received"] != 2 {
			t.Fatalf("received = %d", snap["received"])
		}
		if calls > 2 {
			t.Fatalf("handler called %d times for two copies", calls)
		}
		if len(snd.replies) == 0 {
			return
		}
		if calls > 1 {
			t.Fatalf("handler called %d times though the first reply was cached", calls)
		}
		if from == fuzzSources[2] {
			t.Fatal("reply to an unknown client")
		}
		secret := testSecret
		if from == fuzzSources[1] {
			secret = []byte("lab-secret")
		}
		pkt, ok := refValid(data)
		if !ok {
			t.Fatalf("reply to a malformed datagram % x", data)
		}
		if !refRequestAuthentic(pkt, secret) {
			t.Fatalf("reply to an unauthenticated request % x", pkt)
		}
		if len(snd.replies) != 2 || !bytes.Equal(snd.replies[0], snd.replies[1]) {
			t.Fatalf("retransmission not answered identically: %d replies", len(snd.replies))
		}
		reply := snd.replies[0]
		if snd.to[0] != from {
			t.Fatalf("reply sent to %v", snd.to[0])
		}
		checkReply(t, reply, pkt, secret)
		if err := VerifyReply(reply, pkt, secret); err != nil {
			t.Fatalf("VerifyReply: %v", err)
		}
		want := refAttrs(pkt, 33)
		got := refAttrs(reply, 33)
		if len(got) != len(want) {
			t.Fatalf("%d Proxy-States in reply, %d in request", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("Proxy-State %d: %x, want %x", i, got[i], want[i])
			}
		}
	})
}

// FuzzEAPMessage checks that SetEAPMessage and EAPMessage round-trip any
// EAP packet, alone and through the wire, and that EAPMessage of parsed
// attributes is their concatenation.
func FuzzEAPMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// data as an EAP packet.
		p := &radius.Packet{Code: radius.CodeAccessRequest, Secret: testSecret}
		p.Add(1, radius.Attribute("user"))
		p.Add(79, radius.Attribute("old"))
		SetEAPMessage(p, data)
		got, ok := EAPMessage(p)
		if !ok || !bytes.Equal(got, data) {
			t.Fatalf("EAPMessage(SetEAPMessage(%x)) = %x, %v", data, got, ok)
		}
		if p.Attributes[0].Type != 1 {
			t.Fatal("other attribute lost its place")
		}
		for _, a := range p.Attributes {
			if len(a.Attribute) > 253 {
				t.Fatalf("EAP-Message attribute of %d octets", len(a.Attribute))
			}
		}
		if b, err := EncodeRequest(p); err == nil {
			q, err := radius.Parse(b, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := EAPMessage(q); !ok || !bytes.Equal(got, data) {
				t.Fatalf("after the wire: %x, %v", got, ok)
			}
		} else if len(data) < 3000 {
			t.Fatalf("EncodeRequest of %d octets of EAP: %v", len(data), err)
		}

		// data as an attribute block.
		attrs, err := radius.ParseAttributes(data)
		if err != nil {
			return
		}
		p = &radius.Packet{Code: radius.CodeAccessChallenge, Attributes: attrs}
		var want []byte
		var any bool
		for _, a := range attrs {
			if a.Type == 79 {
				want = append(want, a.Attribute...)
				any = true
			}
		}
		got, ok = EAPMessage(p)
		if ok != any || !bytes.Equal(got, want) {
			t.Fatalf("EAPMessage = %x, %v; want %x, %v", got, ok, want, any)
		}
		if !ok {
			return
		}
		SetEAPMessage(p, got)
		again, _ := EAPMessage(p)
		if !bytes.Equal(again, want) {
			t.Fatalf("re-set EAP-Message: %x, want %x", again, want)
		}
	})
}

// FuzzClientReply feeds datagrams to the Client's reply path for an
// outstanding Access-Request (acct false) or Accounting-Request (acct true)
// and checks that only a reply that verifies by the reference functions is
// delivered, and then parses.
func FuzzClientReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, acct bool) {
		c := &Client{Secret: testSecret}
		c.init()
		cc := &clientConn{c: c, done: make(chan struct{})}
		dest := netip.MustParseAddrPort("127.0.0.1:1812")
		req := fuzzClientRequest(acct)
		pd := &pending{dest: dest, code: radius.Code(req[0]), secret: testSecret, pooled: true, ready: true, ch: make(chan []byte, 1)}
		copy(pd.auth[:], req[4:20])
		cc.take(pd)
		if pd.id != req[1] {
			t.Fatalf("took ID %d", pd.id)
		}
		cc.deliver(bytes.Clone(data), netip.MustParseAddrPort("127.0.0.1:1813")) // wrong source
		cc.deliver(bytes.Clone(data), dest)
		var reply []byte
		select {
		case reply = <-pd.ch:
		default:
			return
		}
		pkt, ok := refValid(data)
		if !ok {
			t.Fatalf("delivered a malformed reply % x", data)
		}
		if !bytes.Equal(reply, pkt) {
			t.Fatalf("delivered % x, not the packet % x", reply, pkt)
		}
		if pkt[1] != req[1] || !replyCodeOK(radius.Code(req[0]), radius.Code(pkt[0])) {
			t.Fatalf("delivered a reply with ID %d code %d", pkt[1], pkt[0])
		}
		if !bytes.Equal(pkt[4:20], refAuth(pkt, testSecret, req[4:20])) {
			t.Fatal("delivered a reply with a wrong Response Authenticator")
		}
		mas := refAttrs(pkt, 80)
		if !acct && len(mas) != 1 || len(mas) > 1 {
			t.Fatalf("delivered a reply with %d Message-Authenticators", len(mas))
		}
		if len(mas) == 1 && !bytes.Equal(mas[0], refMA(pkt, testSecret, req[4:20])) {
			t.Fatal("delivered a reply with a wrong Message-Authenticator")
		}
		if _, err := radius.Parse(reply, testSecret); err != nil {
			t.Fatalf("delivered reply does not parse: %v", err)
		}
	})
}

func fuzzClientRequest(acct bool) []byte {
	if acct {
		return buildRequest(radius.CodeAccountingRequest, 0, [16]byte{}, []attr{{44, []byte("s")}}, buildOpts{})
	}
	return buildRequest(radius.CodeAccessRequest, 0, authOf("fuzz-client-auth"), []attr{{1, []byte("u")}}, buildOpts{})
}

// TestWriteFuzzSeeds regenerates the seed corpora under testdata/fuzz when
// RADIUS_WRITE_SEEDS=1. The seeds are checked in; this documents how they
// were made.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("RADIUS_WRITE_SEEDS") != "1" {
		t.Skip("set RADIUS_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	auth := authOf("seed-authenticat")
	eap := []byte{2, 7, 0, 10, 1, 'a', 'l', 'i', 'c', 'e'}
	ps := []attr{{33, []byte("proxy-1")}, {33, []byte("proxy-2")}}
	user := func(u string) attr { return attr{1, []byte(u)} }
	valid := buildRequest(radius.CodeAccessRequest, 1, auth, []attr{user("alice")}, buildOpts{})
	server := map[string][]any{
		"access":           {valid, uint8(0)},
		"access-eap-proxy": {buildRequest(radius.CodeAccessRequest, 2, auth, append([]attr{user("bob"), {79, eap}}, ps...), buildOpts{maLast: true}), uint8(0)},
		"access-lab":       {buildRequest(radius.CodeAccessRequest, 3, auth, []attr{user("lab")}, buildOpts{secret: []byte("lab-secret")}), uint8(1)},
		"access-unknown":   {valid, uint8(2)},
		"access-panic":     {buildRequest(radius.CodeAccessRequest, 4, auth, []attr{user("panic")}, buildOpts{}), uint8(0)},
		"access-drop":      {buildRequest(radius.CodeAccessRequest, 5, auth, []attr{user("drop")}, buildOpts{}), uint8(0)},
		"access-trailing":  {buildRequest(radius.CodeAccessRequest, 6, auth, nil, buildOpts{trailing: []byte{1, 2, 3}}), uint8(0)},
		"status-server":    {buildRequest(radius.CodeStatusServer, 7, auth, ps[:1], buildOpts{}), uint8(0)},
		"accounting":       {buildRequest(radius.CodeAccountingRequest, 8, auth, []attr{{40, []byte{0, 0, 0, 1}}, {44, []byte("sess")}}, buildOpts{noMA: true}), uint8(0)},
		"accounting-ma":    {buildRequest(radius.CodeAccountingRequest, 9, auth, ps, buildOpts{}), uint8(0)},
		"coa":              {buildRequest(radius.CodeCoARequest, 10, auth, []attr{{44, []byte("sess")}}, buildOpts{}), uint8(0)},
		"disconnect":       {buildRequest(radius.CodeDisconnectRequest, 11, auth, []attr{{44, []byte("sess")}}, buildOpts{}), uint8(0)},
		"bad-missing-ma":   {buildRequest(radius.CodeAccessRequest, 12, auth, ps, buildOpts{noMA: true}), uint8(0)},
		"bad-ma":           {buildRequest(radius.CodeAccessRequest, 13, auth, nil, buildOpts{badMA: true}), uint8(0)},
		"bad-two-ma":       {buildRequest(radius.CodeAccessRequest, 14, auth, nil, buildOpts{twoMA: true}), uint8(0)},
		"bad-acct-auth":    {buildRequest(radius.CodeAccountingRequest, 15, auth, nil, buildOpts{badAuth: true}), uint8(0)},
		"bad-short":        {valid[:19], uint8(0)},
		"bad-length":       {withLength(valid, len(valid)+1), uint8(0)},
		"bad-attribute":    {append(withLength(valid, len(valid)+2), 1, 1), uint8(0)},
		"bad-reply-code":   {buildRequest(radius.CodeAccessAccept, 16, auth, nil, buildOpts{}), uint8(0)},
	}
	eapSeeds := map[string][]any{
		"empty":      {[]byte{}},
		"identity":   {eap},
		"long":       {bytes.Repeat([]byte{0xab}, 600)},
		"attributes": {[]byte{79, 5, 1, 2, 3, 1, 3, 'x', 79, 2, 79, 4, 9, 9}},
		"bad-attrs":  {[]byte{79, 1, 0}},
	}
	ar := fuzzClientRequest(false)
	ac := fuzzClientRequest(true)
	client := map[string][]any{
		"accept":         {signedReply(ar, radius.CodeAccessAccept, testSecret, []attr{{18, []byte("hi")}}, true), false},
		"challenge-eap":  {signedReply(ar, radius.CodeAccessChallenge, testSecret, []attr{{79, eap}, {24, []byte("st")}}, true), false},
		"accept-no-ma":   {signedReply(ar, radius.CodeAccessAccept, testSecret, nil, false), false},
		"accept-forged":  {signedReply(ar, radius.CodeAccessAccept, []byte("x"), nil, true), false},
		"acct-response":  {signedReply(ac, radius.CodeAccountingResponse, testSecret, nil, false), true},
		"acct-ma":        {signedReply(ac, radius.CodeAccountingResponse, testSecret, nil, true), true},
		"acct-wrongcode": {signedReply(ac, radius.CodeAccessAccept, testSecret, nil, true), true},
		"short":          {[]byte{2, 0, 0, 20}, false},
	}
	for name, seeds := range map[string]map[string][]any{"FuzzServerPacket": server, "FuzzEAPMessage": eapSeeds, "FuzzClientReply": client} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for seed, vals := range seeds {
			var b bytes.Buffer
			b.WriteString("go test fuzz v1\n")
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					fmt.Fprintf(&b, "[]byte(%q)\n", v)
				case uint8:
					fmt.Fprintf(&b, "uint8(%d)\n", v)
				case bool:
					fmt.Fprintf(&b, "bool(%v)\n", v)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, seed), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
