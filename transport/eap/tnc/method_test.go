package tnc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// TestConversation runs whole PB-TNC assessments through the EAP engines for
// both method types, with and without fragmentation.
func TestConversation(t *testing.T) {
	tests := []struct {
		name        string
		typ         eap.Type
		rounds      int
		body        int
		rec         pbtnc.AccessRecommendation
		closeAfter  bool
		srvFrag     int // server MaxFragment
		peerFrag    int // peer MaxFragment
		wantSrvFrag bool
		wantPeerFrg bool
		wantState   pbtnc.State
	}{
		{name: "PT-EAP allowed", typ: eap.TypePTEAP, rounds: 2, body: 100, rec: pbtnc.RecommendationAllowed, wantState: pbtnc.StateDecided},
		{name: "PT-EAP quarantined is still method success", typ: eap.TypePTEAP, rounds: 1, body: 10, rec: pbtnc.RecommendationQuarantined, wantState: pbtnc.StateDecided},
		{name: "PT-EAP client closes after result", typ: eap.TypePTEAP, rounds: 1, body: 10, rec: pbtnc.RecommendationDenied, closeAfter: true, wantState: pbtnc.StateEnd},
		{name: "PT-EAP large batches are not fragmented", typ: eap.TypePTEAP, rounds: 1, body: 60000, rec: pbtnc.RecommendationAllowed, srvFrag: 100, peerFrag: 100, wantState: pbtnc.StateDecided},
		{name: "EAP-TNC unfragmented", typ: eap.TypeTNC, rounds: 3, body: 200, rec: pbtnc.RecommendationAllowed, wantState: pbtnc.StateDecided},
		{name: "EAP-TNC fragments both ways", typ: eap.TypeTNC, rounds: 2, body: 500, rec: pbtnc.RecommendationAllowed, srvFrag: 64, peerFrag: 64, wantSrvFrag: true, wantPeerFrg: true, wantState: pbtnc.StateDecided},
		{name: "EAP-TNC server fragments only", typ: eap.TypeTNC, rounds: 1, body: 300, rec: pbtnc.RecommendationAllowed, srvFrag: 100, wantSrvFrag: true, wantState: pbtnc.StateDecided},
		{name: "EAP-TNC peer fragments, close after result", typ: eap.TypeTNC, rounds: 1, body: 300, rec: pbtnc.RecommendationQuarantined, peerFrag: 100, closeAfter: true, wantPeerFrg: true, wantState: pbtnc.StateEnd},
		{name: "EAP-TNC full-size batch in small fragments", typ: eap.TypeTNC, rounds: 1, body: pbtnc.EAPMaxBatchSize - 8 - 12 - 12 /* batch, message, PB-PA headers */, rec: pbtnc.RecommendationAllowed, srvFrag: 1400, peerFrag: 1400, wantSrvFrag: true, wantPeerFrg: true, wantState: pbtnc.StateDecided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imv := &fakeIMV{rounds: tt.rounds, body: tt.body, rec: tt.rec}
			imc := &fakeIMC{body: tt.body}
			ss, cs := sessions(imv, imc, tt.closeAfter)
			m := NewServer(ServerConfig{Type: tt.typ, MaxFragment: tt.srvFrag}, ss)
			var pm *Peer
			srv, peer, w := converse(t, m, func() eap.PeerMethod {
				pm = NewPeer(PeerConfig{Type: tt.typ, MaxFragment: tt.peerFrag}, cs)
				return pm
			})
			if srv.Outcome() != eap.Succeeded || peer.Outcome() != eap.Succeeded {
				t.Fatalf("outcomes server %v (%v) peer %v (%v)", srv.Outcome(), srv.Err(), peer.Outcome(), peer.Err())
			}
			if !pm.Succeeded() || pm.Err() != nil {
				t.Fatalf("peer method succeeded=%v err=%v", pm.Succeeded(), pm.Err())
			}
			if m.Session() != ServerSession(ss) || pm.Session() != PeerSession(cs) {
				t.Fatal("Session() does not return the session")
			}
			if len(imc.results) != 1 || imc.results[0].Recommendation != tt.rec {
				t.Fatalf("client results %+v, want one with %v", imc.results, tt.rec)
			}
			if imv.received != tt.rounds+1 || imc.received != tt.rounds {
				t.Fatalf("IMV received %d PB-PA, IMC %d; want %d and %d", imv.received, imc.received, tt.rounds+1, tt.rounds)
			}
			if ss.State() != tt.wantState {
				t.Fatalf("server state %v, want %v", ss.State(), tt.wantState)
			}
			checkWire(t, tt.typ, w.requests, tt.srvFrag, tt.wantSrvFrag, true)
			checkWire(t, tt.typ, w.responses, tt.peerFrag, tt.wantPeerFrg, false)
		})
	}
}

// checkWire checks the flags octet of every packet of one direction: the
// version, S only on the first Request, fragment sizes, and whether
// fragmentation happened.
func checkWire(t *testing.T, typ eap.Type, pkts [][]byte, maxFrag int, wantFrag, requests bool) {
	t.Helper()
	fragmented := false
	for i, d := range pkts {
		if len(d) == 0 {
			t.Fatalf("packet %d without flags", i)
		}
		if d[0]&versionMask != 1 {
			t.Fatalf("packet %d version %d", i, d[0]&versionMask)
		}
		start := d[0]&TNCFlagStart != 0
		if typ == eap.TypePTEAP {
			start = d[0]&PTEAPFlagStart != 0
			if d[0]&^(PTEAPFlagStart|versionMask) != 0 {
				t.Fatalf("PT-EAP packet %d sets reserved flags: %#x", i, d[0])
			}
		} else {
			if maxFrag > 0 && len(d) > maxFrag {
				t.Fatalf("packet %d of %d octets exceeds MaxFragment %d", i, len(d), maxFrag)
			}
			if d[0]&TNCFlagMore != 0 {
				fragmented = true
			}
		}
		if start != (requests && i == 0) {
			t.Fatalf("packet %d: S flag %v", i, start)
		}
		if requests && i == 0 && len(d) != 1 {
			t.Fatalf("Start carries %d octets of data", len(d)-1)
		}
	}
	if fragmented != wantFrag {
		t.Fatalf("fragmented = %v, want %v", fragmented, wantFrag)
	}
}

// TestSessionFailures covers PB-TNC sessions that end without a result: the
// side that fails sends CLOSE with a fatal PB-Error, and the method fails on
// both sides.
func TestSessionFailures(t *testing.T) {
	for _, typ := range []eap.Type{eap.TypePTEAP, eap.TypeTNC} {
		t.Run(typ.String()+"/IMV fails", func(t *testing.T) {
			imv := &fakeIMV{rounds: 1, body: 10, fail: errors.New("validator broke")}
			imc := &fakeIMC{body: 10}
			ss, cs := sessions(imv, imc, false)
			var pm *Peer
			srv, peer, _ := converse(t, NewServer(ServerConfig{Type: typ}, ss), func() eap.PeerMethod {
				pm = NewPeer(PeerConfig{Type: typ}, cs)
				return pm
			})
			if srv.Outcome() != eap.Failed || !errors.Is(srv.Err(), ErrSession) || !errors.Is(srv.Err(), pbtnc.ErrHandler) {
				t.Fatalf("server outcome %v err %v", srv.Outcome(), srv.Err())
			}
			if peer.Outcome() != eap.Failed || pm.Succeeded() {
				t.Fatalf("peer outcome %v succeeded %v", peer.Outcome(), pm.Succeeded())
			}
			var pe *pbtnc.Error
			if !errors.Is(pm.Err(), ErrSession) || !errors.As(pm.Err(), &pe) || pe.Code != pbtnc.ErrLocalError {
				t.Fatalf("peer err %v, want the server's Local Error", pm.Err())
			}
		})
		t.Run(typ.String()+"/IMC fails", func(t *testing.T) {
			imv := &fakeIMV{rounds: 1, body: 10}
			imc := &fakeIMC{body: 10, fail: errors.New("collector broke")}
			ss, cs := sessions(imv, imc, false)
			srv, peer, _ := converse(t, NewServer(ServerConfig{Type: typ}, ss), func() eap.PeerMethod {
				return NewPeer(PeerConfig{Type: typ}, cs)
			})
			if srv.Outcome() != eap.Failed || !errors.Is(srv.Err(), ErrSession) || !errors.Is(srv.Err(), pbtnc.ErrPeerError) {
				t.Fatalf("server outcome %v err %v", srv.Outcome(), srv.Err())
			}
			if peer.Outcome() != eap.Failed {
				t.Fatalf("peer outcome %v", peer.Outcome())
			}
		})
	}
}

// tncc11 is a PeerSession speaking IF-TNCCS 1.1.
type tncc11 struct{}

func (tncc11) Start(context.Context) ([]byte, error) {
	return []byte(`<?xml version="1.0"?><TNCCS-Batch BatchId="1" Recipient="TNCS"></TNCCS-Batch>`), nil
}
func (tncc11) Step(context.Context, []byte) ([]byte, error) { return nil, errors.New("unused") }
func (tncc11) State() pbtnc.State                           { return pbtnc.StateServerWorking }

func TestIFTNCCS11Refused(t *testing.T) {
	for _, typ := range []eap.Type{eap.TypePTEAP, eap.TypeTNC} {
		t.Run(typ.String(), func(t *testing.T) {
			ss, _ := sessions(&fakeIMV{}, &fakeIMC{}, false)
			srv, _, _ := converse(t, NewServer(ServerConfig{Type: typ}, ss), func() eap.PeerMethod {
				return NewPeer(PeerConfig{Type: typ}, tncc11{})
			})
			if srv.Outcome() != eap.Failed || !errors.Is(srv.Err(), ErrTNCCS11) {
				t.Fatalf("outcome %v err %v", srv.Outcome(), srv.Err())
			}
			if !strings.Contains(srv.Err().Error(), "IF-TNCCS 1.1 not supported") {
				t.Fatalf("error %q does not say IF-TNCCS 1.1 is unsupported", srv.Err())
			}
			if ss.State() != pbtnc.StateInit {
				t.Fatalf("the 1.1 batch reached the PB-TNC server (state %v)", ss.State())
			}
		})
	}
}

// TestForgedSuccessIgnored: an EAP-Success before the RESULT is ignored by
// the peer.
func TestForgedSuccessIgnored(t *testing.T) {
	_, cs := sessions(&fakeIMV{}, &fakeIMC{body: 4}, false)
	peer := eap.NewPeer("x", eap.PeerFactory{Type: eap.TypePTEAP, New: func() eap.PeerMethod {
		return NewPeer(PeerConfig{Type: eap.TypePTEAP}, cs)
	}})
	if _, err := peer.Handle(ctx, &eap.Packet{Code: eap.CodeRequest, ID: 1, Type: eap.TypePTEAP, Data: []byte{PTEAPFlagStart | 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Handle(ctx, &eap.Packet{Code: eap.CodeSuccess, ID: 1}); !errors.Is(err, eap.ErrIgnored) || peer.Outcome() != eap.Pending {
		t.Fatalf("forged Success: %v, outcome %v", err, peer.Outcome())
	}
}
