package ttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"testing"
	"time"

	"trustnac/transport/eap"
)

// splitSeq cuts fuzz input into messages, each prefixed by a 2-byte big-endian length (a
// length beyond the input takes the rest).
func splitSeq(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 && len(out) < 2000 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// joinSeq is the inverse of splitSeq.
func joinSeq(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

func FuzzParseAVPs(f *testing.F) {
	f.Add(AppendAVPs(nil, papAVPs("alice", "s3cret")...))
	f.Fuzz(func(t *testing.T, b []byte) {
		avps, err := ParseAVPs(b)
		if err != nil {
			return
		}
		if len(avps) > MaxAVPs {
			t.Fatalf("%d AVPs", len(avps))
		}
		enc := AppendAVPs(nil, avps...)
		if len(enc) > len(b)+3 {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
		back, err := ParseAVPs(enc)
		if err != nil {
			t.Fatalf("re-encoded AVPs do not parse: %v", err)
		}
		if len(back) != len(avps) {
			t.Fatalf("%d AVPs, then %d", len(avps), len(back))
		}
		for i := range avps {
			a, c := avps[i], back[i]
			if a.Code != c.Code || a.Vendor != c.Vendor || a.Mandatory != c.Mandatory || !bytes.Equal(a.Data, c.Data) {
				t.Fatalf("AVP %d: %+v, then %+v", i, a, c)
			}
		}
		if again := AppendAVPs(nil, back...); !bytes.Equal(again, enc) {
			t.Fatal("encoding is not canonical")
		}
	})
}

func FuzzMessage(f *testing.F) {
	f.Add([]byte{0xc0, 0, 0, 1, 0, 0x16})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded % x as % x", b, enc)
		}
		var back Message
		if err := back.UnmarshalBinary(enc); err != nil || back.Flags != m.Flags || back.Length != m.Length || !bytes.Equal(back.Data, m.Data) {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}

// FuzzServerFragments feeds a Server sequences of EAP-TTLS type-data (see splitSeq): it must
// not panic, and what it holds must stay within MaxMessage.
func FuzzServerFragments(f *testing.F) {
	f.Add(joinSeq(append([]byte{0}, clientHello12(true)...)))
	tlsConf := serverTLS(f, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxMessage = 8 << 10
		s := NewServer(&ServerConfig{
			TLS: tlsConf, MaxFragment: 300, MaxMessage: maxMessage, MaxTotal: 64 << 10, Timeout: 5 * time.Second,
			Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{PAP: papCheck("alice", "s3cret")}) },
		})
		defer s.Close()
		ctx := context.Background()
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for _, msg := range splitSeq(b) {
			st, err := s.Process(ctx, msg)
			if len(s.in.buf) > maxMessage || cap(s.in.buf) > 2*maxMessage+8192 {
				t.Fatalf("reassembly holds %d bytes (capacity %d)", len(s.in.buf), cap(s.in.buf))
			}
			if err != nil || st.Done {
				if st.Success {
					t.Fatal("success from fuzz input")
				}
				return
			}
			if len(st.Data) == 0 || len(st.Data) > 5+300 {
				t.Fatalf("Request type-data of %d bytes", len(st.Data))
			}
		}
	})
}

// FuzzPeerFragments feeds a Peer, after a Start, sequences of EAP-TTLS type-data.
func FuzzPeerFragments(f *testing.F) {
	f.Add(joinSeq([]byte{0}))
	tlsConf := peerTLS(f, 0)
	tlsConf.CurvePreferences = []tls.CurveID{tls.X25519} // ML-KEM key generation per input is slow
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxMessage = 8 << 10
		p := NewPeer(&PeerConfig{TLS: tlsConf, MaxFragment: 300, MaxMessage: maxMessage, MaxTotal: 64 << 10, Timeout: 5 * time.Second,
			Phase2: NewInnerPeer("alice", "s3cret", nil)})
		defer p.Close()
		ctx := context.Background()
		if _, err := p.Process(ctx, []byte{byte(FlagStart)}); err != nil {
			t.Fatal(err)
		}
		for _, msg := range splitSeq(b) {
			out, err := p.Process(ctx, msg)
			if len(p.in.buf) > maxMessage {
				t.Fatalf("reassembly holds %d bytes", len(p.in.buf))
			}
			if err == nil && (len(out) == 0 || len(out) > 5+300) {
				t.Fatalf("Response type-data of %d bytes", len(out))
			}
		}
		if p.Succeeded() || p.MSK() != nil {
			t.Fatal("peer succeeded on fuzz input")
		}
	})
}

// FuzzInnerServer feeds phase 2 rounds of AVPs (see splitSeq) to an InnerServer with PAP and an
// inner method.
func FuzzInnerServer(f *testing.F) {
	f.Add(joinSeq(AppendAVPs(nil, papAVPs("alice", "s3cret")...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewInnerServer(InnerConfig{
			PAP:       papCheck("alice", "s3cret"),
			Selector:  chain(func() eap.ServerMethod { return &fakeServer{size: 8} }),
			MaxRounds: 16,
		})
		ctx := context.Background()
		ended := false
		for _, round := range splitSeq(b) {
			avps, err := ParseAVPs(round)
			if err != nil {
				return
			}
			reply, st, err := s.Process(ctx, avps)
			if ended {
				if err == nil {
					t.Fatal("phase 2 went on after it ended")
				}
				return
			}
			switch {
			case err != nil:
				if st != Phase2Failure {
					t.Fatalf("error %v with status %v", err, st)
				}
				ended = true
			case st == Phase2Continue:
				if _, ok, _ := joinEAP(reply); !ok {
					t.Fatalf("continue without an EAP-Message: %+v", reply)
				}
			case st == Phase2Success:
				if s.User() == "" {
					t.Fatal("success without a user")
				}
				ended = true
			default:
				ended = true
			}
		}
	})
}
