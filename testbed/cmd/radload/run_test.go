package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"

	tradius "trustnac/transport/radius"
)

// policyServer answers like the benchmark policy: MAB admits 02:00:00:00:00:01 (admit, VLAN 10)
// and puts other MACs in assess (VLAN 20); PAP admits alice/alice-password. With wrongFilter it
// answers every Accept with Filter-Id "wrong", as a misconfigured server would.
func policyServer(t *testing.T, wrongFilter bool) (addr string, mab, pap *atomic.Int64) {
	t.Helper()
	clients, err := tradius.NewClients([]tradius.ClientConfig{{Name: "local", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte("testing123")}})
	if err != nil {
		t.Fatal(err)
	}
	mab, pap = new(atomic.Int64), new(atomic.Int64)
	accept := func(req *radius.Packet, filter, vlan string) *radius.Packet {
		if wrongFilter {
			filter = "wrong"
		}
		p := req.Response(radius.CodeAccessAccept)
		_ = rfc2865.FilterID_SetString(p, filter)
		_ = rfc2868.TunnelType_Set(p, 0, 13) // VLAN (RFC 3580 §3.31)
		_ = rfc2868.TunnelMediumType_Set(p, 0, rfc2868.TunnelMediumType_Value_IEEE802)
		_ = rfc2868.TunnelPrivateGroupID_SetString(p, 0, vlan)
		return p
	}
	h := tradius.HandlerFunc(func(ctx context.Context, r *tradius.Request) *radius.Packet {
		p := r.Packet
		user, pw := rfc2865.UserName_GetString(p), rfc2865.UserPassword_GetString(p)
		if rfc2865.ServiceType_Get(p) == rfc2865.ServiceType_Value_CallCheck {
			mab.Add(1)
			if user != pw || !strings.EqualFold(strings.ReplaceAll(rfc2865.CallingStationID_GetString(p), "-", ""), user) {
				return p.Response(radius.CodeAccessReject)
			}
			if user == "020000000001" {
				return accept(p, "admit", "10")
			}
			return accept(p, "assess", "20")
		}
		pap.Add(1)
		if user == "alice" && pw == "alice-password" {
			return accept(p, "admit", "10")
		}
		return p.Response(radius.CodeAccessReject)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &tradius.Server{Clients: clients, Handler: h}
	go srv.Serve(pc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return pc.LocalAddr().String(), mab, pap
}

// TestRunAgainstServer runs radload end to end against an in-process RADIUS server: the
// expectations must hold for a correct server and turn into errors (exit 1) for a wrong one.
func TestRunAgainstServer(t *testing.T) {
	expect := []string{"-expect-filter", "admit", "-expect-vlan", "10", "-expect-filter-other", "assess", "-expect-vlan-other", "20"}
	tests := []struct {
		name        string
		wrongFilter bool
		args        []string
		code        int
		accept      uint64
		reject      uint64
		errs        uint64
		mabCalls    bool
	}{
		{"mab", false, append([]string{"-mode", "mab", "-macs", "5"}, expect...), 0, 200, 0, 0, true},
		{"mab single MAC", false, append([]string{"-mode", "mab", "-macs", "1"}, expect...), 0, 200, 0, 0, true},
		{"pap", false, append([]string{"-mode", "pap"}, expect...), 0, 200, 0, 0, false},
		{"pap wrong password", false, []string{"-mode", "pap", "-password", "nope"}, 1, 0, 200, 0, false},
		{"pap wrong password tolerated", false, []string{"-mode", "pap", "-password", "nope", "-max-failures", "1"}, 0, 0, 200, 0, false},
		{"misconfigured server", true, append([]string{"-mode", "mab"}, expect...), 1, 0, 0, 200, true},
		{"no expectations", true, []string{"-mode", "mab"}, 0, 200, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, mab, pap := policyServer(t, tt.wrongFilter)
			args := append([]string{"-addr", addr, "-n", "200", "-c", "8", "-warmup", "10ms", "-timeout", "1s", "-json"}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			var s Summary
			if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
				t.Fatalf("output %q: %v", stdout.String(), err)
			}
			if s.Accept != tt.accept || s.Reject != tt.reject || s.Error != tt.errs || s.Timeout != 0 {
				t.Errorf("summary %+v", s)
			}
			if s.Rate <= 0 || s.P50 <= 0 || s.P50 > s.P99 || s.Rounds != 1 {
				t.Errorf("rate %v p50 %v p99 %v rounds %v", s.Rate, s.P50, s.P99, s.Rounds)
			}
			if (mab.Load() >= 200) != tt.mabCalls || (pap.Load() >= 200) == tt.mabCalls {
				t.Errorf("server saw %d MAB and %d PAP requests", mab.Load(), pap.Load())
			}
		})
	}
}

// TestRunTimeouts checks that a server that never answers is reported as timeouts and fails.
func TestRunTimeouts(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-addr", pc.LocalAddr().String(), "-n", "4", "-c", "4", "-warmup", "0", "-timeout", "50ms", "-json"}, &stdout, &stderr)
	var s Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if code != 1 || s.Timeout != 4 || s.Rate != 0 {
		t.Errorf("exit %d, summary %+v", code, s)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"-c", "0"}, 2},
		{[]string{"-d", "0s"}, 2},
		{[]string{"-macs", "0"}, 2},
		{[]string{"-secret", ""}, 2},
		{[]string{"-mode", "chap"}, 2},
		{[]string{"-nas-ip", "::1"}, 2},
		{[]string{"-mode", "ttls-pap"}, 2}, // no -ca / -server-name
		{[]string{"-mode", "ttls-pap", "-ca", "/nonexistent", "-server-name", "x"}, 2},
		{[]string{"extra"}, 2},
		{[]string{"-h"}, 0},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.code {
			t.Errorf("radload %q: exit %d, want %d; stderr %s", tt.args, code, tt.code, stderr.String())
		}
	}
}
