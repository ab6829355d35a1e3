package tnc

import (
	"errors"
	"testing"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// TestPeerRequests feeds hand-made Requests to a Peer. Every step but the
// last must be answered; the last must give up with err, or be answered with
// a Response whose flags octet is wantFlags.
func TestPeerRequests(t *testing.T) {
	sdata := batch(t, true, pbtnc.BatchSDATA, 40)
	tnc := func(p TNCPacket) []byte { p.Version = 1; return tncData(t, p) }
	tests := []struct {
		name      string
		cfg       PeerConfig
		steps     [][]byte
		err       error
		wantFlags byte
		wantData  bool // the last Response carries a batch
		succeeded bool
	}{
		{name: "PT-EAP start", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{{0x81}}, wantFlags: 0x01, wantData: true},
		{name: "EAP-TNC start", cfg: PeerConfig{Type: eap.TypeTNC}, steps: [][]byte{{0x21}}, wantFlags: 0x01, wantData: true},
		{name: "higher version offered: answer with 1", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{{0x82}}, wantFlags: 0x01, wantData: true},
		{name: "version 0 offered", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{{0x80}}, err: ErrVersion},
		{name: "version changes after Start", cfg: PeerConfig{Type: eap.TypeTNC}, steps: [][]byte{{0x21}, concat([]byte{0x02}, sdata)}, err: ErrVersion},
		{name: "Request before Start", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{concat([]byte{0x01}, sdata)}, err: ErrProtocol},
		{name: "second Start", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{{0x81}, {0x81}}, err: ErrProtocol},
		{name: "IF-TNCCS 1.1", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{{0x81}, concat([]byte{0x01}, []byte("<TNCCS-Batch/>"))}, err: ErrTNCCS11},
		{name: "empty Request", cfg: PeerConfig{Type: eap.TypeTNC}, steps: [][]byte{{0x21}, {0x01}}, err: ErrProtocol},
		{name: "malformed", cfg: PeerConfig{Type: eap.TypeTNC}, steps: [][]byte{{}}, err: ErrMalformed},
		{name: "bad config", cfg: PeerConfig{Type: eap.TypeMD5}, steps: [][]byte{{0x81}}, err: ErrConfig},
		{name: "Start carrying the server's first batch", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{concat([]byte{0x81}, sdata)}, wantFlags: 0x01, wantData: true},
		{name: "SDATA in fragments", cfg: PeerConfig{Type: eap.TypeTNC}, steps: [][]byte{
			{0x21},
			tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: uint32(len(sdata)), Data: sdata[:20]}),
			tnc(TNCPacket{Data: sdata[20:]}),
		}, wantFlags: 0x01, wantData: true},
		{name: "fragment acknowledged", cfg: PeerConfig{Type: eap.TypeTNC}, steps: [][]byte{
			{0x21},
			tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: uint32(len(sdata)), Data: sdata[:20]}),
		}, wantFlags: 0x01},
		{name: "fragment flood", cfg: PeerConfig{Type: eap.TypeTNC, MaxFragments: 2}, steps: [][]byte{
			{0x21},
			tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: uint32(len(sdata)), Data: sdata[:5]}),
			tnc(TNCPacket{More: true, Data: sdata[5:10]}),
			tnc(TNCPacket{More: true, Data: sdata[10:15]}),
		}, err: ErrTooManyFragments},
		{name: "L beyond the cap", cfg: PeerConfig{Type: eap.TypeTNC, MaxMessage: 50}, steps: [][]byte{
			{0x21},
			tnc(TNCPacket{LengthIncluded: true, More: true, MessageLength: uint32(len(sdata)), Data: sdata[:5]}),
		}, err: ErrTooLarge},
		{name: "RESULT", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{
			{0x81},
			concat([]byte{0x01}, batch(t, true, pbtnc.BatchResult, 0)),
		}, wantFlags: 0x01, succeeded: true},
		{name: "garbage batch: CLOSE goes back", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{
			{0x81},
			{0x01, 2, 0x80, 0, 2, 0, 0, 0, 30, 1, 2, 3},
		}, wantFlags: 0x01, wantData: true},
		{name: "Request after the session closed", cfg: PeerConfig{Type: eap.TypePTEAP}, steps: [][]byte{
			{0x81},
			concat([]byte{0x01}, batch(t, true, pbtnc.BatchClose, 0)),
			concat([]byte{0x01}, sdata),
		}, err: ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPeer(tt.cfg, pbtnc.NewClient(&fakeIMC{body: 8}, pbtnc.Config{MaxBatchSize: pbtnc.EAPMaxBatchSize}))
			var out []byte
			var err error
			for i, in := range tt.steps {
				out, err = p.Process(ctx, in)
				last := i == len(tt.steps)-1
				if (!last || tt.err == nil) && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !errors.Is(err, eap.ErrPeerGiveUp) || p.Err() == nil {
					t.Fatalf("last step: %v (Err %v), want %v and ErrPeerGiveUp", err, p.Err(), tt.err)
				}
				if p.Succeeded() {
					t.Fatal("Succeeded after giving up")
				}
				return
			}
			if len(out) == 0 || out[0] != tt.wantFlags || (len(out) > 1) != tt.wantData {
				t.Fatalf("Response %x, want flags %#x with data %v", out, tt.wantFlags, tt.wantData)
			}
			if p.Succeeded() != tt.succeeded {
				t.Fatalf("Succeeded() = %v", p.Succeeded())
			}
		})
	}
}

// TestPeerGarbageClose: the CLOSE the peer sends for a bad batch carries a
// fatal PB-Error, and Err reports the session failure.
func TestPeerGarbageClose(t *testing.T) {
	p := NewPeer(PeerConfig{Type: eap.TypePTEAP}, pbtnc.NewClient(&fakeIMC{}, pbtnc.Config{}))
	if _, err := p.Process(ctx, []byte{0x81}); err != nil {
		t.Fatal(err)
	}
	out, err := p.Process(ctx, []byte{0x01, 2, 0x80, 0, 2, 0, 0, 0, 30})
	if err != nil {
		t.Fatal(err)
	}
	pe, err := closeError(out[1:])
	if err != nil || !pe.Fatal {
		t.Fatalf("Response %x: %v %+v", out, err, pe)
	}
	if !errors.Is(p.Err(), ErrSession) || p.Succeeded() {
		t.Fatalf("Err %v succeeded %v", p.Err(), p.Succeeded())
	}
}
