package nac

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	tradius "trustnac/transport/radius"
)

// eapRelay forwards RADIUS datagrams between a NAS and the PDP and notes
// the size of the largest EAP packet the PDP sent.
type eapRelay struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	maxEAP  int
	replies int
}

func newEAPRelay(t *testing.T, server string) *eapRelay {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.Dial("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	r := &eapRelay{conn: ln}
	t.Cleanup(func() { ln.Close(); up.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if _, err := up.Write(buf[:n]); err != nil {
				return
			}
			up.SetReadDeadline(time.Now().Add(5 * time.Second))
			m, err := up.Read(buf)
			if err != nil {
				return
			}
			if p, err := radius.Parse(buf[:m], []byte("testing123")); err == nil {
				if msg, ok := tradius.EAPMessage(p); ok {
					r.mu.Lock()
					r.maxEAP = max(r.maxEAP, len(msg))
					r.replies++
					r.mu.Unlock()
				}
			}
			ln.WriteToUDP(buf[:m], from)
		}
	}()
	return r
}

func (r *eapRelay) addr() string { return r.conn.LocalAddr().String() }

func (r *eapRelay) largest() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxEAP
}

// The PDP cuts its EAP-TTLS packets to the NAS's Framed-MTU (RFC 3579
// §2.4), to 1020 bytes without one, and to radius.eap.max_fragment; and the
// key exchange settings of both ends decide the tunnel's first flights:
// with a classic key exchange on either end, a whole posture conversation
// takes five round trips.
func TestEAPFragmentsAndKeyExchange(t *testing.T) {
	tests := []struct {
		name      string
		pdpExtra  string // lines of radius.eap
		agentKX   string
		framedMTU int // 0: none sent
		maxEAP    int // the largest EAP packet the PDP must send
		rounds    int
		group     tls.CurveID
	}{
		{"hybrid, Framed-MTU 1400", "", "", 1400, 1400, 6, tls.X25519MLKEM768},
		{"hybrid, no Framed-MTU", "", "", 0, 1020, 6, tls.X25519MLKEM768},
		{"hybrid, max_fragment 600", "    max_fragment: 600\n", "", 1400, 610, 8, tls.X25519MLKEM768},
		{"hybrid, Framed-MTU 9000", "", "", 9000, 0, 5, tls.X25519MLKEM768},
		{"classic PDP, hybrid agent", "    key_exchange: classic\n", "", 1400, 0, 5, tls.X25519},
		{"hybrid PDP, classic agent", "", KeyExchangeClassic, 1400, 0, 5, tls.CurveP256},
		{"classic both", "    key_exchange: classic\n", KeyExchangeClassic, 1400, 0, 5, tls.CurveP256},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newRADIUSLab(t, tt.pdpExtra)
			relay := newEAPRelay(t, l.auth)
			client := &tradius.Client{Secret: []byte(l.secret), Timeout: 5 * time.Second}
			defer client.Close()
			cfg := &AgentConfig{
				PDP:        AgentPDPConfig{Pin: l.pdp.Fingerprint, KeyExchange: tt.agentKX},
				Collectors: CollectorsConfig{OS: &OSCollectorConfig{Root: fixture("healthy")}},
			}
			cfg.SetDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			agent, err := NewAgentEAP(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer agent.Close()
			conv := &tradius.EAPConversation{Client: client, Addr: relay.addr(), Request: func() *radius.Packet {
				p := radius.New(radius.CodeAccessRequest, []byte(l.secret))
				rfc2865.UserName_SetString(p, "anonymous")
				rfc2865.CallingStationID_SetString(p, fmt.Sprintf("02-00-00-00-20-%02x", i))
				rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Ethernet)
				if tt.framedMTU > 0 {
					rfc2865.FramedMTU_Set(p, rfc2865.FramedMTU(tt.framedMTU))
				}
				return p
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := conv.Run(ctx, agent.Peer)
			if err != nil {
				t.Fatal(err)
			}
			if got := rfc2865.FilterID_GetString(res.Reply); got != "admit" {
				t.Errorf("Filter-Id %q, want admit", got)
			}
			if got := agent.TLS().CurveID; got != tt.group {
				t.Errorf("key exchange %v, want %v", got, tt.group)
			}
			if res.Rounds != tt.rounds {
				t.Errorf("%d round trips, want %d", res.Rounds, tt.rounds)
			}
			limit := min(tt.framedMTU, 3800) // what fits an Access-Challenge
			if limit == 0 {
				limit = 1020
			}
			got := relay.largest()
			if got > limit {
				t.Errorf("the PDP sent a %d-byte EAP packet over a %d-byte MTU", got, limit)
			}
			if tt.maxEAP > 0 && got != tt.maxEAP {
				t.Errorf("largest EAP packet %d bytes, want %d (full fragments)", got, tt.maxEAP)
			}
		})
	}
}

// The key exchange settings are checked when the configurations load.
func TestKeyExchangeConfig(t *testing.T) {
	a := &AgentConfig{PDP: AgentPDPConfig{Pin: "sha256:" + strings.Repeat("ab", 32), KeyExchange: "kyber"}}
	a.SetDefaults()
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "pdp.key_exchange") {
		t.Errorf("agent key_exchange kyber: %v", err)
	}
	r := RADIUSConfig{EAP: EAPConf{KeyExchange: "none"}}
	if errs := r.validate(); !containsErr(errs, "radius.eap.key_exchange") {
		t.Errorf("pdp key_exchange none: %v", errs)
	}
	for _, kx := range []string{"", KeyExchangeHybrid, KeyExchangeClassic} {
		r := RADIUSConfig{EAP: EAPConf{KeyExchange: kx}}
		if errs := r.validate(); containsErr(errs, "key_exchange") {
			t.Errorf("key_exchange %q refused: %v", kx, errs)
		}
	}
}

func containsErr(errs []error, s string) bool {
	err := errors.Join(errs...)
	return err != nil && strings.Contains(err.Error(), s)
}

// The agent's EAP-TTLS fragments fill an EAPOL frame, never more than on
// Ethernet and never less than the EAP minimum allows.
func TestAgentEAPFragment(t *testing.T) {
	for _, tt := range []struct{ mtu, want int }{
		{1500, 1486}, {9000, 1486}, {1450, 1436}, {1280, 1266}, {576, 1006}, {0, 1006},
	} {
		if got := eapFragment(tt.mtu); got != tt.want {
			t.Errorf("MTU %d: %d-byte fragments, want %d", tt.mtu, got, tt.want)
		}
	}
}
