package ttls

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"trustnac/transport/eap"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// recordExchange runs one TTLS/PAP conversation at the method level and returns the type-data
// each side sent.
func recordExchange(tb testing.TB, version uint16, frag int) (toServer, toPeer [][]byte) {
	tb.Helper()
	ctx := context.Background()
	s := NewServer(&ServerConfig{TLS: serverTLS(tb, version), MaxFragment: frag,
		Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{PAP: papCheck("alice", "s3cret")}) }})
	p := NewPeer(&PeerConfig{TLS: peerTLS(tb, version), MaxFragment: frag, Phase2: NewInnerPeer("alice", "s3cret", nil)})
	req, err := s.Start(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for range 1000 {
		toPeer = append(toPeer, req)
		resp, err := p.Process(ctx, req)
		if err != nil {
			tb.Fatal(err)
		}
		toServer = append(toServer, resp)
		st, err := s.Process(ctx, resp)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Done {
			if !st.Success {
				tb.Fatal("recorded conversation failed")
			}
			return toServer, toPeer
		}
		req = st.Data
	}
	tb.Fatal("recorded conversation did not end")
	return nil, nil
}

func writeSeeds(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", string(b))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpdateFuzzSeeds regenerates the seed corpora from real conversations (go test
// -run TestUpdateFuzzSeeds -update-seeds). The conversations are random, so the files change
// on every run; only regenerate when the formats change.
func TestUpdateFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the corpora")
	}
	enc := func(m Message) []byte { b, _ := m.MarshalBinary(); return b }
	s12, p12 := recordExchange(t, tls.VersionTLS12, 1024)
	s13, p13 := recordExchange(t, tls.VersionTLS13, 300)
	flood := [][]byte{enc(Message{Flags: FlagLength | FlagMore, Length: 4096, Data: []byte{0x16, 3, 1}})}
	for range 40 {
		flood = append(flood, enc(Message{Flags: FlagMore}))
	}
	writeSeeds(t, "FuzzServerFragments", map[string][]byte{
		"tls12-conversation":  joinSeq(s12...),
		"tls13-fragmented":    joinSeq(s13...),
		"tls12-no-ems":        joinSeq(append([]byte{0}, clientHello12(false)...)),
		"tls12-ems":           joinSeq(append([]byte{0}, clientHello12(true)...)),
		"lying-length":        joinSeq(enc(Message{Flags: FlagLength | FlagMore, Length: 0xffffffff, Data: []byte{0x16}})),
		"length-changes":      joinSeq(enc(Message{Flags: FlagLength | FlagMore, Length: 500, Data: []byte{0x16}}), enc(Message{Flags: FlagLength | FlagMore, Length: 900, Data: []byte{3}})),
		"fragment-flood":      joinSeq(flood...),
		"not-tls":             joinSeq([]byte("\x00GET / HTTP/1.1\r\n\r\n")),
		"ack-before-anything": joinSeq([]byte{0}),
	})
	writeSeeds(t, "FuzzPeerFragments", map[string][]byte{
		"tls12-conversation": joinSeq(p12[1:]...),
		"tls13-fragmented":   joinSeq(p13[1:]...),
		"second-start":       joinSeq([]byte{byte(FlagStart)}),
		"lying-length":       joinSeq(enc(Message{Flags: FlagLength | FlagMore, Length: 0x7fffffff, Data: []byte{0x16}})),
		"alert":              joinSeq([]byte{0, 0x15, 3, 3, 0, 2, 2, 40}),
	})
	identity, _ := (&eap.Packet{Code: eap.CodeResponse, ID: 0, Type: eap.TypeIdentity, Data: []byte("bob")}).MarshalBinary()
	answer, _ := (&eap.Packet{Code: eap.CodeResponse, ID: 1, Type: typeFake, Data: []byte("12345678")}).MarshalBinary()
	nak, _ := (&eap.Packet{Code: eap.CodeResponse, ID: 1, Type: eap.TypeNak, Data: []byte{26}}).MarshalBinary()
	eapAVP := func(b []byte) []byte { return AppendAVPs(nil, AVP{Code: AVPEAPMessage, Mandatory: true, Data: b}) }
	writeSeeds(t, "FuzzInnerServer", map[string][]byte{
		"pap":               joinSeq(AppendAVPs(nil, papAVPs("alice", "s3cret")...)),
		"pap-wrong":         joinSeq(AppendAVPs(nil, papAVPs("alice", "guess")...)),
		"pap-then-eap":      joinSeq(AppendAVPs(nil, papAVPs("alice", "s3cret")...), eapAVP(answer)),
		"identity-answer":   joinSeq(eapAVP(identity), eapAVP(answer)),
		"identity-nak":      joinSeq(eapAVP(identity), eapAVP(nak)),
		"unknown-mandatory": joinSeq(AppendAVPs(nil, AVP{Code: 4242, Mandatory: true, Data: []byte("x")})),
		"split-eap-message": joinSeq(AppendAVPs(nil, AVP{Code: AVPEAPMessage, Data: identity[:3]}, AVP{Code: AVPEAPMessage, Data: identity[3:]})),
	})
	writeSeeds(t, "FuzzParseAVPs", map[string][]byte{
		"pap":             AppendAVPs(nil, papAVPs("alice", "s3cret")...),
		"vendor":          AppendAVPs(nil, AVP{Code: 26, Vendor: 311, Mandatory: true, Data: []byte{1, 2, 3, 4, 5}}),
		"eap-message":     eapAVP(identity),
		"no-final-pad":    []byte{0, 0, 0, 1, 0, 0, 0, 9, 'x'},
		"length-lies":     []byte{0, 0, 0, 1, 0x40, 0, 0, 200, 'a'},
		"vendor-cut":      []byte{0, 0, 0, 1, 0x80, 0, 0, 12, 0},
		"length-below-hd": []byte{0, 0, 0, 1, 0, 0, 0, 3},
	})
	writeSeeds(t, "FuzzMessage", map[string][]byte{
		"start":          {byte(FlagStart)},
		"ack":            {0},
		"first-fragment": enc(Message{Flags: FlagLength | FlagMore, Length: 3000, Data: []byte{0x16, 3, 3}}),
		"more":           enc(Message{Flags: FlagMore, Data: []byte{1, 2}}),
		"short-length":   {0x80, 0, 1},
		"empty":          {},
	})
}
