package tnc

import (
	"testing"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// BenchmarkTNCFragmentation fragments a full-size PB-TNC batch into 1400-octet
// EAP-TNC packets, decodes them and reassembles the batch.
func BenchmarkTNCFragmentation(b *testing.B) {
	batch := pattern(pbtnc.EAPMaxBatchSize, 3)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		tx, _ := newChannel(eap.TypeTNC, 0, 1400, 0)
		rx, _ := newChannel(eap.TypeTNC, 0, 0, 0)
		d, err := tx.send(batch)
		for {
			if err != nil {
				b.Fatal(err)
			}
			var p TNCPacket
			if err = p.UnmarshalBinary(d); err != nil {
				b.Fatal(err)
			}
			_, complete, err := rx.receive(&p)
			if err != nil {
				b.Fatal(err)
			}
			if complete {
				break
			}
			d = tx.next()
		}
	}
}

// BenchmarkConversation runs a whole two-round assessment through the EAP
// engines.
func BenchmarkConversation(b *testing.B) {
	for _, typ := range []eap.Type{eap.TypePTEAP, eap.TypeTNC} {
		b.Run(typ.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ss, cs := sessions(&fakeIMV{rounds: 2, body: 2000, rec: pbtnc.RecommendationAllowed}, &fakeIMC{body: 2000}, false)
				srv, _, _ := converse(b, NewServer(ServerConfig{Type: typ, MaxFragment: 1400}, ss), func() eap.PeerMethod {
					return NewPeer(PeerConfig{Type: typ, MaxFragment: 1400}, cs)
				})
				if srv.Outcome() != eap.Succeeded {
					b.Fatal(srv.Err())
				}
			}
		})
	}
}
