package main

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
)

func ms(v ...int) []time.Duration {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x) * time.Millisecond
	}
	return d
}

func TestPercentile(t *testing.T) {
	upTo100 := make([]int, 100)
	for i := range upTo100 {
		upTo100[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"p0", ms(1, 2, 3), 0, 0},
		{"single p50", ms(7), 50, 7 * time.Millisecond},
		{"single p99", ms(7), 99, 7 * time.Millisecond},
		// Nearest rank: ceil(p/100 * n).
		{"odd median", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"even median is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"p91 of 10 rounds up", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 91, 10 * time.Millisecond},
		{"p99 of 100", ms(upTo100...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(upTo100...), 50, 50 * time.Millisecond},
		{"p100 is the max", ms(1, 5, 9), 100, 9 * time.Millisecond},
		{"above 100 clamps", ms(1, 5, 9), 150, 9 * time.Millisecond},
		{"tiny p gives the min", ms(4, 5, 9), 0.001, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestRecorderAndSummary(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	// Worker a: 3 accepts and a timeout; worker b: a reject, an accept and two errors.
	a.add(outAccept, 3*time.Millisecond, 1, nil)
	a.add(outAccept, 1*time.Millisecond, 1, nil)
	a.add(outTimeout, 2*time.Second, 1, nil)
	a.add(outAccept, 2*time.Millisecond, 1, nil)
	b.add(outReject, 5*time.Millisecond, 2, nil)
	b.add(outAccept, 4*time.Millisecond, 2, nil)
	b.add(outError, 6*time.Millisecond, 3, errors.New("wrong Filter-Id"))
	b.add(outError, 10*time.Millisecond, 1, errors.New("wrong Filter-Id"))

	s := summarize(merge([]*recorder{a, b}), 2*time.Second)
	want := Summary{
		Seconds: 2, Accept: 4, Reject: 1, Timeout: 1, Error: 2,
		Rate: 3.5, // 7 answered (timeouts excluded) in 2 s
		P50:  4, P90: 10, P99: 10, Max: 10,
		Rounds: 11.0 / 7, // timeouts' rounds not counted
		Errors: map[string]uint64{"wrong Filter-Id": 2},
	}
	if s.Seconds != want.Seconds || s.Accept != want.Accept || s.Reject != want.Reject || s.Timeout != want.Timeout ||
		s.Error != want.Error || s.Rate != want.Rate || s.P50 != want.P50 || s.P90 != want.P90 || s.P99 != want.P99 ||
		s.Max != want.Max || s.Rounds != want.Rounds || s.Errors["wrong Filter-Id"] != 2 || len(s.Errors) != 1 {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	if s.Total() != 8 {
		t.Errorf("Total = %d, want 8", s.Total())
	}
}

func TestSummaryOfNothing(t *testing.T) {
	s := summarize(merge(nil), 0)
	if s.Rate != 0 || s.P50 != 0 || s.Max != 0 || s.Rounds != 0 || s.Total() != 0 {
		t.Errorf("empty summary %+v", s)
	}
}

func TestErrorKindsBounded(t *testing.T) {
	r := &recorder{}
	for i := range 3 * maxErrorKinds {
		r.add(outError, time.Millisecond, 1, errors.New(string(rune('a'+i))))
	}
	r.add(outError, time.Millisecond, 1, errors.New("a"))
	m := merge([]*recorder{r, r})
	if len(m.errors) != maxErrorKinds {
		t.Errorf("%d error kinds kept, want %d", len(m.errors), maxErrorKinds)
	}
	if m.errors["a"] != 4 {
		t.Errorf(`count of "a" = %d, want 4`, m.errors["a"])
	}
	if m.counts[outError] != 2*(3*maxErrorKinds+1) {
		t.Errorf("error count %d", m.counts[outError])
	}
}

// TestMeasureCount checks that -n measures exactly n transactions after the warm-up, whatever
// the concurrency, and that warm-up transactions are not recorded.
func TestMeasureCount(t *testing.T) {
	tests := []struct{ c, n int }{{1, 10}, {8, 100}, {64, 50}}
	for _, tt := range tests {
		var calls atomic.Int64
		tx := func(ctx context.Context, i uint64) (outcome, int, error) {
			calls.Add(1)
			time.Sleep(100 * time.Microsecond)
			if i%10 == 3 {
				return outReject, 1, nil
			}
			return outAccept, 1, nil
		}
		o := &options{concurrency: tt.c, n: tt.n, warmup: 20 * time.Millisecond}
		s := measure(context.Background(), o, tx)
		if s.Total() != uint64(tt.n) {
			t.Errorf("c=%d n=%d: measured %d", tt.c, tt.n, s.Total())
		}
		if calls.Load() <= int64(tt.n) {
			t.Errorf("c=%d n=%d: %d calls, want warm-up calls besides the measured ones", tt.c, tt.n, calls.Load())
		}
		if s.Reject == 0 || s.Accept == 0 || s.Rate <= 0 {
			t.Errorf("c=%d n=%d: %+v", tt.c, tt.n, s)
		}
	}
}

func TestMeasureStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tx := func(ctx context.Context, i uint64) (outcome, int, error) {
		if i == 20 {
			cancel()
		}
		<-time.After(time.Millisecond)
		return outAccept, 1, nil
	}
	done := make(chan Summary)
	go func() { done <- measure(ctx, &options{concurrency: 4, duration: time.Hour}, tx) }()
	select {
	case s := <-done:
		if s.Total() == 0 || s.Total() > 40 {
			t.Errorf("measured %d", s.Total())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("measure did not stop after cancel")
	}
}

func TestMACForms(t *testing.T) {
	tests := []struct {
		mac        uint64
		bare, ietf string
	}{
		{firstMAC, "020000000001", "02-00-00-00-00-01"},
		{firstMAC + 0xfe, "0200000000ff", "02-00-00-00-00-FF"},
		{0xa1b2c3d4e5f6, "a1b2c3d4e5f6", "A1-B2-C3-D4-E5-F6"},
	}
	for _, tt := range tests {
		bare, ietf := macForms(tt.mac)
		if bare != tt.bare || ietf != tt.ietf {
			t.Errorf("macForms(%x) = %q, %q; want %q, %q", tt.mac, bare, ietf, tt.bare, tt.ietf)
		}
	}
}

func TestExpectation(t *testing.T) {
	accept := func(filter, vlan string) *radius.Packet {
		p := radius.New(radius.CodeAccessAccept, []byte("s"))
		if filter != "" {
			_ = rfc2865.FilterID_SetString(p, filter)
		}
		if vlan != "" {
			_ = rfc2868.TunnelPrivateGroupID_SetString(p, 0, vlan)
		}
		return p
	}
	tests := []struct {
		name  string
		want  expectation
		reply *radius.Packet
		ok    bool
	}{
		{"nothing expected", expectation{}, accept("", ""), true},
		{"filter matches", expectation{filter: "admit"}, accept("admit", "10"), true},
		{"filter and vlan match", expectation{"admit", "10"}, accept("admit", "10"), true},
		{"wrong filter", expectation{filter: "admit"}, accept("assess", "10"), false},
		{"missing filter", expectation{filter: "admit"}, accept("", "10"), false},
		{"wrong vlan", expectation{"admit", "10"}, accept("admit", "20"), false},
		{"missing vlan", expectation{vlan: "10"}, accept("admit", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.want.check(tt.reply); (err == nil) != tt.ok {
				t.Errorf("check = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestMABRequest(t *testing.T) {
	g := &generator{opts: &options{macs: 3}, secret: []byte("testing123")}
	g.nasIP = mustAddr(t, "192.0.2.7")
	p := g.mabRequest(firstMAC + 2)
	if got := rfc2865.UserName_GetString(p); got != "020000000003" {
		t.Errorf("User-Name %q", got)
	}
	if got := rfc2865.UserPassword_GetString(p); got != "020000000003" {
		t.Errorf("User-Password %q", got)
	}
	if got := rfc2865.CallingStationID_GetString(p); got != "02-00-00-00-00-03" {
		t.Errorf("Calling-Station-Id %q", got)
	}
	if rfc2865.ServiceType_Get(p) != rfc2865.ServiceType_Value_CallCheck || rfc2865.NASPortType_Get(p) != rfc2865.NASPortType_Value_Ethernet {
		t.Errorf("Service-Type %v NAS-Port-Type %v", rfc2865.ServiceType_Get(p), rfc2865.NASPortType_Get(p))
	}
	if got := rfc2865.NASIPAddress_Get(p); !slices.Equal(got.To4(), []byte{192, 0, 2, 7}) {
		t.Errorf("NAS-IP-Address %v", got)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseStatCPU(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	// utime stime ...; a command name may hold spaces and parentheses.
	const rest = " S 1 2 3 4 5 6 7 8 9 10 250 125 0 0 20 0 4 0 100"
	for _, comm := range []string{"(nac)", "(a b) (c)", "())"} {
		got, err := parseStatCPU("4242 " + comm + rest)
		if err != nil || got != 375*clockTick {
			t.Errorf("comm %s: %v, %v; want %v", comm, got, err, 375*clockTick)
		}
	}
	for _, bad := range []string{"", "4242 nac S 1", "4242 (nac) S 1 2 3", "4242 (nac) S 1 2 3 4 5 6 7 8 9 10 x 125"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if d, err := processCPU(os.Getpid()); err != nil || d < 0 {
		t.Errorf("own process: %v, %v", d, err)
	}
}
