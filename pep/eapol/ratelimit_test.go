package eapol

import (
	"net"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	a := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	b := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	count := func(l *limiter, mac net.HardwareAddr, n int) (ok int) {
		for range n {
			if l.allow(mac) {
				ok++
			}
		}
		return ok
	}
	tests := []struct {
		name string
		cfg  RateLimit
		run  func(l *limiter) (got, want int)
	}{
		{"burst then empty", RateLimit{Rate: 10, Burst: 5}, func(l *limiter) (int, int) { return count(l, a, 1000), 5 }},
		{"refill", RateLimit{Rate: 10, Burst: 5}, func(l *limiter) (int, int) {
			count(l, a, 100)
			now = now.Add(300 * time.Millisecond) // 3 tokens
			return count(l, a, 100), 3
		}},
		{"refill capped at burst", RateLimit{Rate: 10, Burst: 5}, func(l *limiter) (int, int) {
			count(l, a, 100)
			now = now.Add(time.Hour)
			return count(l, a, 100), 5
		}},
		{"sources independent", RateLimit{Rate: 10, Burst: 5}, func(l *limiter) (int, int) {
			count(l, a, 100)
			return count(l, b, 100), 5
		}},
		{"off", RateLimit{}, func(l *limiter) (int, int) { return count(l, a, 1000), 1000 }},
		{"source cap", RateLimit{Rate: 1, Burst: 1, MaxSources: 1}, func(l *limiter) (int, int) {
			count(l, a, 1)
			return count(l, b, 3), 0
		}},
		{"idle source pruned at cap", RateLimit{Rate: 1, Burst: 1, MaxSources: 1}, func(l *limiter) (int, int) {
			count(l, a, 1)
			now = now.Add(2 * time.Second)
			return count(l, b, 3), 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.cfg, clock)
			if got, want := tt.run(l); got != want {
				t.Fatalf("allowed %d, want %d", got, want)
			}
		})
	}
}
