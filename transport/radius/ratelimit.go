package radius

import (
	"sync"
	"time"
)

// logLimiter lets one log line per key through per interval, so that a
// flood of bad datagrams cannot flood the log. It remembers a bounded
// number of keys.
type logLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]limitState
}

type limitState struct {
	at         time.Time
	suppressed uint64
}

const maxLimiterKeys = 4096

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval, last: make(map[string]limitState)}
}

// allow reports whether a line for key may be logged at now, and how many
// were suppressed since the last one that was.
func (l *logLimiter) allow(key string, now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.last[key]
	if ok && now.Sub(st.at) < l.interval {
		st.suppressed++
		l.last[key] = st
		return false, 0
	}
	if !ok && len(l.last) >= maxLimiterKeys {
		clear(l.last)
	}
	l.last[key] = limitState{at: now}
	return true, st.suppressed
}
