package eapol

import (
	"net"
	"sync"
	"time"
)

// RateLimit bounds the EAPOL frames accepted from one source MAC with a token bucket: Burst
// frames at once, refilled at Rate frames a second. A Rate of 0 or less turns limiting off. A
// port that floods (a runaway or hostile supplicant sending EAPOL-Start in a loop) loses only its
// own excess frames.
type RateLimit struct {
	Rate  float64 // frames per second, per source
	Burst int     // bucket size, at least 1 when Rate > 0
	// MaxSources caps the sources tracked at once (default DefaultMaxSources). When the table is
	// full, idle sources are forgotten; frames from new sources beyond the cap are dropped.
	MaxSources int
}

// Default rate limits: an EAP-TTLS conversation with posture runs tens of round trips in a few
// seconds, always paced by the authenticator, so 20 frames a second with a burst of 40 does not
// slow it down.
const (
	DefaultRate       = 20
	DefaultBurst      = 40
	DefaultMaxSources = 4096
)

// DefaultRateLimit is the limit a Conn starts with.
var DefaultRateLimit = RateLimit{Rate: DefaultRate, Burst: DefaultBurst, MaxSources: DefaultMaxSources}

type bucket struct {
	tokens float64
	last   time.Time
}

// limiter is a per-source token bucket. It is safe for concurrent use.
type limiter struct {
	mu      sync.Mutex
	cfg     RateLimit
	now     func() time.Time
	buckets map[[6]byte]*bucket
}

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	l := &limiter{now: now}
	l.set(cfg)
	return l
}

func (l *limiter) set(cfg RateLimit) {
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	l.mu.Lock()
	l.cfg = cfg
	l.buckets = make(map[[6]byte]*bucket)
	l.mu.Unlock()
}

// allow takes a token from src's bucket, reporting false when there is none.
func (l *limiter) allow(src net.HardwareAddr) bool {
	var k [6]byte
	copy(k[:], src)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Rate <= 0 {
		return true
	}
	now := l.now()
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.cfg.MaxSources {
			l.prune(now)
			if len(l.buckets) >= l.cfg.MaxSources {
				return false
			}
		}
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.buckets[k] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(l.cfg.Burst), b.tokens+el.Seconds()*l.cfg.Rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets sources whose bucket has refilled: they are indistinguishable from new ones.
func (l *limiter) prune(now time.Time) {
	full := time.Duration(float64(l.cfg.Burst) / l.cfg.Rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
}
