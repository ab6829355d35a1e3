package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"
)

// outcome classifies one transaction: a RADIUS exchange (mab, pap) or a whole EAP conversation
// (ttls-*).
type outcome int

const (
	outAccept  outcome = iota // Access-Accept that passed every check
	outReject                 // Access-Reject
	outTimeout                // no (verified) reply after all tries
	outError                  // anything else: wrong Filter-Id, bad keys, unexpected code, EAP failure
)

// maxErrorKinds bounds the distinct error messages kept for the report.
const maxErrorKinds = 8

// recorder collects the results of one worker; it is not shared, so it needs no lock.
type recorder struct {
	counts    [4]uint64
	latencies []time.Duration // of answered transactions (accept, reject, error)
	rounds    uint64          // RADIUS round trips of answered transactions
	errors    map[string]uint64
}

func (r *recorder) add(o outcome, d time.Duration, rounds int, err error) {
	r.counts[o]++
	if o == outTimeout {
		return
	}
	r.latencies = append(r.latencies, d)
	r.rounds += uint64(rounds)
	if err != nil {
		if r.errors == nil {
			r.errors = make(map[string]uint64)
		}
		msg := err.Error()
		if _, ok := r.errors[msg]; ok || len(r.errors) < maxErrorKinds {
			r.errors[msg]++
		}
	}
}

// merge folds the recorders of all workers into one.
func merge(rs []*recorder) *recorder {
	m := &recorder{}
	n := 0
	for _, r := range rs {
		n += len(r.latencies)
	}
	m.latencies = make([]time.Duration, 0, n)
	for _, r := range rs {
		for i := range m.counts {
			m.counts[i] += r.counts[i]
		}
		m.latencies = append(m.latencies, r.latencies...)
		m.rounds += r.rounds
		for msg, c := range r.errors {
			if m.errors == nil {
				m.errors = make(map[string]uint64)
			}
			if _, ok := m.errors[msg]; ok || len(m.errors) < maxErrorKinds {
				m.errors[msg] += c
			}
		}
	}
	return m
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted: the smallest
// value such that at least p% of the values are less than or equal to it. Zero for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 || p <= 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary is the result of a run, printed as text or (-json) as one JSON object.
type Summary struct {
	Mode        string  `json:"mode"`
	Addr        string  `json:"addr"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"` // measured window, warm-up excluded
	Accept      uint64  `json:"accept"`
	Reject      uint64  `json:"reject"`
	Timeout     uint64  `json:"timeout"`
	Error       uint64  `json:"error"`
	// Rate is answered transactions (accept, reject, error) per second: requests/s for mab and
	// pap, conversations/s for ttls modes.
	Rate float64 `json:"rate"`
	// Latency percentiles of answered transactions in milliseconds; for ttls modes the time of
	// a whole conversation (P50 is the median conversation time).
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// Rounds is the mean number of RADIUS round trips per answered transaction.
	Rounds float64           `json:"rounds"`
	Errors map[string]uint64 `json:"errors,omitempty"` // a sample of error messages and their counts
	// LoadCPU is radload's own CPU time (user and system) per answered transaction in the
	// measured window, in microseconds; ServerCPU the server's, with -server-pid.
	LoadCPU   float64 `json:"load_cpu_us,omitempty"`
	ServerCPU float64 `json:"server_cpu_us,omitempty"`
}

// summarize computes the summary of merged results measured over elapsed.
func summarize(r *recorder, elapsed time.Duration) Summary {
	slices.Sort(r.latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	s := Summary{
		Seconds: elapsed.Seconds(),
		Accept:  r.counts[outAccept],
		Reject:  r.counts[outReject],
		Timeout: r.counts[outTimeout],
		Error:   r.counts[outError],
		P50:     ms(percentile(r.latencies, 50)),
		P90:     ms(percentile(r.latencies, 90)),
		P99:     ms(percentile(r.latencies, 99)),
		Errors:  r.errors,
	}
	answered := len(r.latencies)
	if answered > 0 {
		s.Max = ms(r.latencies[answered-1])
		s.Rounds = float64(r.rounds) / float64(answered)
	}
	if elapsed > 0 {
		s.Rate = float64(answered) / elapsed.Seconds()
	}
	return s
}

// Total is the number of transactions measured, whatever their outcome.
func (s *Summary) Total() uint64 { return s.Accept + s.Reject + s.Timeout + s.Error }

// printText writes the summary for a human.
func (s *Summary) printText(w io.Writer) {
	unit := "requests"
	if isTTLS(s.Mode) {
		unit = "conversations"
	}
	fmt.Fprintf(w, "mode %s  server %s  concurrency %d  measured %.2fs\n", s.Mode, s.Addr, s.Concurrency, s.Seconds)
	fmt.Fprintf(w, "%s %d  accept %d  reject %d  timeout %d  error %d\n", unit, s.Total(), s.Accept, s.Reject, s.Timeout, s.Error)
	fmt.Fprintf(w, "rate %.1f %s/s  (%.1f RADIUS round trips each)\n", s.Rate, unit, s.Rounds)
	fmt.Fprintf(w, "latency p50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms\n", s.P50, s.P90, s.P99, s.Max)
	if s.LoadCPU > 0 {
		fmt.Fprintf(w, "cpu per transaction: radload %.1fµs", s.LoadCPU)
		if s.ServerCPU > 0 {
			fmt.Fprintf(w, ", server %.1fµs", s.ServerCPU)
		}
		fmt.Fprintln(w)
	}
	msgs := make([]string, 0, len(s.Errors))
	for m := range s.Errors {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	for _, m := range msgs {
		fmt.Fprintf(w, "error x%d: %s\n", s.Errors[m], m)
	}
}
