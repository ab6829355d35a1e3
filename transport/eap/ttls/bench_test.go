package ttls

import (
	"context"
	"testing"
)

// BenchmarkHandshakePAP runs one full EAP-TTLS/PAP conversation per op, server and peer
// in-process (ECDSA P-256 certificate, default fragment size).
func BenchmarkHandshakePAP(b *testing.B) {
	for _, ver := range versions {
		b.Run(ver.name, func(b *testing.B) {
			stls, ptls := serverTLS(b, ver.v), peerTLS(b, ver.v)
			ctx := context.Background()
			pap := papCheck("alice", "s3cret")
			var bytes, ops int64
			for b.Loop() {
				ops++
				s := NewServer(&ServerConfig{TLS: stls, Phase2: func(TunnelInfo) Phase2 { return NewInnerServer(InnerConfig{PAP: pap}) }})
				p := NewPeer(&PeerConfig{TLS: ptls, Phase2: NewInnerPeer("alice", "s3cret", nil)})
				req, err := s.Start(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for {
					resp, err := p.Process(ctx, req)
					if err != nil {
						b.Fatal(err)
					}
					bytes += int64(len(req) + len(resp))
					st, err := s.Process(ctx, resp)
					if err != nil {
						b.Fatal(err)
					}
					if st.Done {
						if !st.Success || !p.Succeeded() {
							b.Fatal("conversation failed")
						}
						break
					}
					req = st.Data
				}
			}
			b.ReportMetric(float64(bytes)/float64(ops), "wire-bytes/op")
		})
	}
}

func BenchmarkParseAVPs(b *testing.B) {
	wire := AppendAVPs(nil, papAVPs("alice", "s3cret")...)
	wire = AppendAVPs(wire, AVP{Code: AVPEAPMessage, Mandatory: true, Data: make([]byte, 1400)})
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := ParseAVPs(wire); err != nil {
			b.Fatal(err)
		}
	}
}
