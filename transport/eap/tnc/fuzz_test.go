package tnc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// Fuzz inputs for FuzzTNCFragments are a sequence of EAP-TNC type-data, each
// preceded by a 2-octet big-endian length.

func splitPackets(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 && len(out) < 64 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func joinPackets(pkts ...[]byte) []byte {
	var b []byte
	for _, p := range pkts {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

const (
	fuzzMaxMessage   = 4096
	fuzzMaxFragments = 16
)

// FuzzTNCFragments decodes a sequence of EAP-TNC packets, checks that each
// re-encodes to a packet that decodes to the same value, feeds them to the
// reassembler and checks what comes out against the fragments that went in
// and against the caps; a reassembled batch is fragmented again and must
// reassemble to itself. The same packets then drive a Server to look for
// panics.
func FuzzTNCFragments(f *testing.F) {
	for _, s := range tncFragmentSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts := splitPackets(data)
		ch, err := newChannel(eap.TypeTNC, fuzzMaxMessage, 0, fuzzMaxFragments)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte // data of the fragments since the reassembly began
		for _, raw := range pkts {
			var p TNCPacket
			if err := p.UnmarshalBinary(raw); err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("decode error %v is not ErrMalformed", err)
				}
				break
			}
			enc, err := p.MarshalBinary()
			if err != nil {
				t.Fatalf("re-encode %+v: %v", p, err)
			}
			var q TNCPacket
			if err := q.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("round trip %+v -> %x -> %+v, %v", p, enc, q, err)
			}
			if len(enc) != p.Len() || len(raw) != len(enc) {
				t.Fatalf("length %d, encoded %d, Len %d", len(raw), len(enc), p.Len())
			}
			if !ch.rxActive {
				want = want[:0]
			}
			want = append(want, p.Data...)
			out, complete, err := ch.receive(&p)
			if err != nil {
				break
			}
			if ch.rxCount > fuzzMaxFragments || len(ch.rx) > fuzzMaxMessage {
				t.Fatalf("reassembly past the caps: %d fragments, %d octets", ch.rxCount, len(ch.rx))
			}
			if !complete {
				continue
			}
			if len(out) > fuzzMaxMessage || !bytes.Equal(out, want) {
				t.Fatalf("reassembled %d octets, want the %d octets sent", len(out), len(want))
			}
			refragment(t, out, MinFragment+len(raw)%64)
		}

		s := NewServer(ServerConfig{Type: eap.TypeTNC, MaxFragment: 64, MaxFragments: fuzzMaxFragments},
			pbtnc.NewServer(&fakeIMV{rounds: 2, body: 100}, pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize}))
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for _, raw := range pkts {
			st, err := s.Process(ctx, raw)
			if err != nil || st.Done {
				break
			}
			if len(st.Data) > 64 {
				t.Fatalf("Request of %d octets above MaxFragment", len(st.Data))
			}
		}
	})
}

// refragment sends batch with fragments of at most maxFrag octets and
// reassembles it on another channel.
func refragment(t *testing.T, batch []byte, maxFrag int) {
	tx, _ := newChannel(eap.TypeTNC, fuzzMaxMessage, maxFrag, 0)
	rx, _ := newChannel(eap.TypeTNC, fuzzMaxMessage, 0, 1<<20)
	d, err := tx.send(batch)
	for i := 0; ; i++ {
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if len(d) > maxFrag {
			t.Fatalf("fragment of %d octets, limit %d", len(d), maxFrag)
		}
		var p TNCPacket
		if err := p.UnmarshalBinary(d); err != nil {
			t.Fatal(err)
		}
		out, complete, err := rx.receive(&p)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if complete {
			if !bytes.Equal(out, batch) || tx.sending() {
				t.Fatalf("re-fragmented batch does not reassemble to itself")
			}
			return
		}
		if !tx.sending() {
			t.Fatal("receiver waits for fragments the sender does not have")
		}
		d = tx.next()
	}
}

// FuzzPTEAP decodes PT-EAP type-data, checks the round trip, and hands it to
// a Server and a Peer after their Start.
func FuzzPTEAP(f *testing.F) {
	for _, s := range ptEAPSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p PTEAPPacket
		if err := p.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrMalformed) || len(data) != 0 {
				t.Fatalf("decode %x: %v", data, err)
			}
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var q PTEAPPacket
		if err := q.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip %+v -> %x -> %+v, %v", p, enc, q, err)
		}
		if !bytes.Equal(enc[1:], data[1:]) || enc[0] != data[0]&(PTEAPFlagStart|versionMask) {
			t.Fatalf("re-encoding %x of %x changes more than reserved bits", enc, data)
		}

		s := NewServer(ServerConfig{Type: eap.TypePTEAP},
			pbtnc.NewServer(&fakeIMV{rounds: 1, body: 10}, pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize}))
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if st, err := s.Process(ctx, data); err != nil || st.Done {
				break
			}
		}

		c := NewPeer(PeerConfig{Type: eap.TypePTEAP}, pbtnc.NewClient(&fakeIMC{body: 10}, pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize}))
		if _, err := c.Process(ctx, []byte{PTEAPFlagStart | PTEAPVersion}); err != nil {
			t.Fatal(err)
		}
		if out, err := c.Process(ctx, data); err == nil && (len(out) == 0 || out[0] != PTEAPVersion) {
			t.Fatalf("Response %x", out)
		}
	})
}

func tncFragmentSeeds(t testing.TB) [][]byte {
	cdata := batch(t, false, pbtnc.BatchCDATA, 60)
	frag := func(p TNCPacket) []byte { p.Version = 1; return tncData(t, p) }
	L := uint32(len(cdata))
	return [][]byte{
		joinPackets(frag(TNCPacket{Data: cdata})),
		joinPackets(
			frag(TNCPacket{LengthIncluded: true, More: true, MessageLength: L, Data: cdata[:30]}),
			frag(TNCPacket{More: true, Data: cdata[30:60]}),
			frag(TNCPacket{Data: cdata[60:]}),
			[]byte{0x01},
		),
		joinPackets(frag(TNCPacket{LengthIncluded: true, MessageLength: L, Data: cdata})),
		joinPackets(frag(TNCPacket{LengthIncluded: true, More: true, MessageLength: 1 << 20, Data: cdata[:10]})),
		joinPackets(
			frag(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}),
			frag(TNCPacket{Data: cdata[10:30]}),
		),
		joinPackets(
			frag(TNCPacket{LengthIncluded: true, More: true, MessageLength: 20, Data: cdata[:10]}),
			frag(TNCPacket{LengthIncluded: true, More: true, MessageLength: 25, Data: cdata[10:12]}),
		),
		joinPackets(
			frag(TNCPacket{LengthIncluded: true, More: true, MessageLength: 100, Data: cdata[:1]}),
			frag(TNCPacket{More: true, Data: cdata[1:2]}), frag(TNCPacket{More: true, Data: cdata[2:3]}),
			frag(TNCPacket{More: true, Data: cdata[3:4]}), frag(TNCPacket{More: true, Data: cdata[4:5]}),
		),
		joinPackets(frag(TNCPacket{Data: []byte("<?xml version=\"1.0\"?><TNCCS-Batch/>")})),
		joinPackets([]byte{0x02, 2, 0, 0, 1}, []byte{0x81, 0}),
		joinPackets(frag(TNCPacket{Data: []byte{2, 0, 0, 1, 0, 0, 0, 99, 1}})),
	}
}

func ptEAPSeeds(t testing.TB) [][]byte {
	return [][]byte{
		{0x81},
		{0x01},
		concat([]byte{0x01}, batch(t, false, pbtnc.BatchCDATA, 20)),
		concat([]byte{0x01}, batch(t, true, pbtnc.BatchSDATA, 20)),
		concat([]byte{0x01}, batch(t, true, pbtnc.BatchResult, 0)),
		concat([]byte{0x01}, batch(t, false, pbtnc.BatchClose, 0)),
		concat([]byte{0x02}, batch(t, false, pbtnc.BatchCDATA, 20)),
		concat([]byte{0x79}, batch(t, false, pbtnc.BatchCDATA, 4)),
		[]byte("\x01<?xml version=\"1.0\"?><TNCCS-Batch BatchId=\"1\"/>"),
		{0x01, 2, 0, 0, 1, 0, 0, 0, 200},
		{},
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// TestWriteFuzzSeeds writes the seed corpora in the "go test fuzz v1" format
// when run with -update-seeds:
//
//	go test -run TestWriteFuzzSeeds -update-seeds ./transport/eap/tnc/
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			b := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzTNCFragments", tncFragmentSeeds(t))
	write("FuzzPTEAP", ptEAPSeeds(t))
}
