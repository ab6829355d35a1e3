package tpmimv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"trustnac/imv"
	"trustnac/imv/tpm/eventlog"
	"trustnac/imv/tpm/ima"
	"trustnac/transport/patnc"
)

// FactsIMA is the member of the TPM verifier's facts that holds the facts
// of namespace "ima"; SplitFacts takes it out.
const FactsIMA = "ima"

// SplitFacts separates a TPM verifier result's facts into those of
// namespace "tpm" and those of namespace "ima". It does not modify f.
func SplitFacts(f map[string]any) (tpmFacts, imaFacts map[string]any) {
	if f == nil {
		return nil, nil
	}
	tpmFacts = maps.Clone(f)
	imaFacts, _ = tpmFacts[FactsIMA].(map[string]any)
	delete(tpmFacts, FactsIMA)
	return tpmFacts, imaFacts
}

// The log parsers and replays, variables so that tests of the log
// plumbing can stand in for them.
var (
	replayBootLog = eventlog.Replay
	parseIMALog   = ima.ParseBinary
	replayIMALog  = ima.Replay
	// replayIMAPadded is the replay of kernels before 5.11.
	replayIMAPadded = ima.ReplayPaddedSHA1
)

// logState is a measurement log as it arrives in pieces.
type logState struct {
	kind      uint8
	buf       []byte // the log from offset 0
	owned     bool   // buf is the session's to append to (not the cache's)
	total     uint64 // the log's size as the collector last reported it
	got       bool   // a piece arrived since the log was (re)started
	fromCache bool   // buf began as the verifier's cached copy
	asked     bool   // asked for in the last request
	silent    bool   // asked for, and nothing came
	progress  bool   // the last round added bytes
	restarted bool   // dropped since the last request; ask from 0
	retried   bool   // refetched from 0 after a cached copy failed to replay
	gaveUp    bool   // no more rounds for it
}

// finished: complete, or no longer asked for.
func (ls *logState) finished() bool {
	return ls.gaveUp || (ls.got && uint64(len(ls.buf)) == ls.total)
}

// empty: finished without a byte (the endpoint has no such log).
func (ls *logState) empty() bool { return ls == nil || !ls.got || len(ls.buf) == 0 }

// requestOffset is where to ask the log from: a cached copy is asked for
// again from a little before its end, so that the overlap shows whether it
// still is a prefix of the endpoint's log.
func (ls *logState) requestOffset() uint64 {
	if ls.fromCache && !ls.got {
		return uint64(len(ls.buf) - min(len(ls.buf), logOverlap))
	}
	return uint64(len(ls.buf))
}

// restart drops what was gathered so the log is asked for from 0.
func (ls *logState) restart() {
	*ls = logState{kind: ls.kind, owned: true, restarted: true, retried: ls.retried, asked: ls.asked}
}

// add applies one piece. A piece beyond what is held is ignored (the
// verifier asks again from where it is); one that overlaps what is held
// must agree with it, else the log is started again. A log that got
// shorter keeps what the piece agreed with up to the new end.
func (ls *logState) add(p *patnc.MeasurementLog) {
	off, data := p.Offset, p.Data
	end := off + uint64(len(data))
	cur := uint64(len(ls.buf))
	if off > cur {
		return
	}
	if off < cur {
		n := min(cur-off, uint64(len(data)))
		if !bytes.Equal(ls.buf[off:off+n], data[:n]) {
			ls.restart()
			if off != 0 {
				return
			}
			cur = 0
		} else {
			data = data[n:]
			off += n
		}
	}
	ls.got = true
	ls.total = p.Total
	if off == cur && len(data) > 0 {
		if !ls.owned {
			nb := make([]byte, len(ls.buf), len(ls.buf)+len(data))
			copy(nb, ls.buf)
			ls.buf, ls.owned = nb, true
		}
		ls.buf = append(ls.buf, data...)
		ls.progress = true
	}
	if uint64(len(ls.buf)) > ls.total {
		if end < ls.total {
			ls.restart()
			return
		}
		// The log is now shorter than what is held, and the piece
		// agreed with it up to its end: keep that prefix.
		ls.buf = ls.buf[:ls.total:ls.total]
	}
}

// evaluation is what the evidence showed once complete.
type evaluation struct {
	refs refResult

	bootAbsent     bool
	bootReplayed   bool
	bootUnreadable bool
	boot           *eventlog.Result

	imaAbsent     bool
	imaReplayed   bool
	imaUnreadable bool
	imaNoPCR      bool
	imaEntries    int
	imaTemplate   string
	imaChecked    bool // against an allowlist
	imaViolations []ima.Violation
}

// evaluate checks the verified PCR values against the reference sets and
// replays the logs. With retry, a log that began from the verifier's cache
// and does not replay is dropped to be fetched whole once: evaluate then
// returns true and leaves the result unset.
func (s *session) evaluate(retry bool) bool {
	ev := &evaluation{}
	q := s.quote
	if s.v.cfg.References != nil {
		ev.refs = matchReferences(s.v.cfg.References(s.ep), q.pcrs)
	}
	again := false
	retryLog := func(ls *logState) bool {
		if retry && ls.fromCache && !ls.retried && s.asked < maxRounds {
			s.v.logs.drop(s.ak.id, ls.kind)
			ls.restart()
			ls.retried = true
			again = true
			return true
		}
		return false
	}

	if ls := s.logs[patnc.LogBoot]; ls.empty() || !ls.finished() || uint64(len(ls.buf)) != ls.total {
		ev.bootAbsent = true
	} else {
		boot := make(map[uint16]map[int][]byte, len(q.pcrs))
		for bank, vals := range q.pcrs {
			m := maps.Clone(vals)
			delete(m, 10) // IMA's; the boot log does not extend it
			boot[bank] = m
		}
		res, err := replayBootLog(ls.buf, boot)
		switch {
		case err != nil || res == nil || !res.Replayed:
			if !retryLog(ls) {
				if err != nil || res == nil {
					s.log.Warn("boot event log unreadable", "err", err)
					ev.bootUnreadable = true
				} else {
					s.log.Warn("boot event log does not replay", "mismatches", res.Mismatches)
					ev.boot = res
				}
			}
		default:
			ev.bootReplayed, ev.boot = true, res
			s.cacheLog(ls)
		}
	}

	if ls := s.logs[patnc.LogIMA]; ls.empty() || !ls.finished() || uint64(len(ls.buf)) != ls.total {
		ev.imaAbsent = true
	} else {
		entries, err := parseIMALog(ls.buf, maxIMAEntries)
		n, ok := 0, false
		if err == nil {
			n, ok, err = replayIMA(entries, q.pcrs)
		}
		switch {
		case errors.Is(err, errNoPCR10):
			ev.imaNoPCR = true
		case err != nil || !ok:
			if !retryLog(ls) {
				if err != nil {
					s.log.Warn("IMA log unreadable", "err", err)
					ev.imaUnreadable = true
				} else {
					s.log.Warn("IMA log does not replay to PCR 10")
				}
			}
		default:
			entries = entries[:n]
			ev.imaReplayed, ev.imaEntries = true, n
			ev.imaTemplate = imaTemplate(entries)
			if al := s.v.cfg.IMAAllowlist; al != nil {
				ev.imaChecked = true
				ev.imaViolations = al.Check(entries)
			}
			s.cacheLog(ls)
		}
	}
	if again {
		s.result = nil
		return true
	}
	s.result = ev
	return false
}

// cacheLog keeps a replayed log for the AK's next assessment; only for a
// trusted AK, so that unknown keys cannot push trusted ones out.
func (s *session) cacheLog(ls *logState) {
	if s.rec != nil && s.rec.Status == StatusApproved {
		s.v.logs.put(s.ak.id, ls.kind, ls.buf)
		ls.owned = false
	}
}

var errNoPCR10 = errors.New("tpmimv: PCR 10 was not quoted")

// replayIMA replays IMA entries in every quoted bank that has PCR 10 and
// returns how many entries the quote covers. The log is read after the
// quote, so up to imaTail entries appended in between are tolerated: the
// longest prefix that replays in every bank wins. Kernels before 5.11
// extended the non-SHA-1 banks with the padded SHA-1 template digest; that
// replay is tried when the current one does not match. An entry whose
// logged template hash lies makes its prefixes not match.
func replayIMA(entries []ima.Entry, pcrs map[uint16]map[int][]byte) (int, bool, error) {
	var banks []uint16
	for _, b := range []uint16{algSHA256, algSM3256, algSHA384, algSHA1} {
		if _, ok := pcrs[b][10]; ok {
			banks = append(banks, b)
		}
	}
	if len(banks) == 0 {
		return 0, false, errNoPCR10
	}
	replays := []func([]ima.Entry, uint16) ([]byte, error){replayIMALog, replayIMAPadded}
	for n := len(entries); n >= 0 && n >= len(entries)-imaTail; n-- {
		for _, replay := range replays {
			ok := true
			for _, b := range banks {
				v, err := replay(entries[:n], b)
				if err != nil || !bytes.Equal(v, pcrs[b][10]) {
					ok = false
					break
				}
			}
			if ok {
				return n, true, nil
			}
		}
	}
	return 0, false, nil
}

// imaTemplate names the template of the entries: the one most use.
func imaTemplate(entries []ima.Entry) string {
	count := map[string]int{}
	best := ""
	for _, e := range entries {
		count[e.Template]++
		if c := count[e.Template]; c > count[best] || (c == count[best] && e.Template < best) {
			best = e.Template
		}
	}
	return best
}

// Result reports the facts and the recommendation: NoAccess when the
// evidence is refused or the AK is not trusted, Isolate when evidence is
// missing after asking or does not match the references, the logs or the
// allowlist, Allow when every check passed, and no recommendation when
// the endpoint sent no TPM evidence at all.
func (s *session) Result() imv.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quote != nil && s.result == nil && len(s.denied) == 0 {
		s.evaluate(false)
	}
	r := imv.Result{Facts: s.facts()}
	var isolate []string
	switch {
	case !s.received:
		r.Recommendation, r.Assessment = imv.NoRecommendation, patnc.AssessmentDontKnow
		r.Reasons = append(r.Reasons, "the endpoint sent no TPM evidence")
	case len(s.denied) > 0:
		r.Recommendation, r.Assessment = imv.NoAccess, patnc.AssessmentMajor
		r.Reasons = append(r.Reasons, s.denied...)
	case s.ak == nil:
		r.Recommendation, r.Assessment = imv.Isolate, patnc.AssessmentError
		r.Reasons = append(r.Reasons, "the endpoint did not report its TPM attestation key")
	case s.quote == nil:
		r.Recommendation, r.Assessment = imv.Isolate, patnc.AssessmentError
		r.Reasons = append(r.Reasons, "the endpoint did not send a TPM quote")
	case s.rec == nil || s.rec.Status != StatusApproved:
		r.Recommendation, r.Assessment = imv.NoAccess, patnc.AssessmentMajor
		r.Reasons = append(r.Reasons, s.trustReason())
	default:
		isolate = s.isolateReasons()
		if len(isolate) > 0 {
			r.Recommendation, r.Assessment = imv.Isolate, patnc.AssessmentMinor
			r.Reasons = append(r.Reasons, isolate...)
		} else {
			r.Recommendation, r.Assessment = imv.Allow, patnc.AssessmentCompliant
		}
	}
	r.Reasons = append(r.Reasons, s.notes...)
	return r
}

// trustReason says why the AK is not trusted.
func (s *session) trustReason() string {
	id := s.ak.id
	switch {
	case s.rec != nil && s.rec.Method == MethodCredential:
		return "the attestation key " + id + " awaits approval by an admin: " + ekCertReason(s.ekCertErr)
	case s.mode == EnrollNone:
		return "the attestation key " + id + " is not enrolled; an admin must approve it"
	case s.secret != nil:
		return "the endpoint did not answer the credential challenge, so its attestation key " + id + " is not enrolled"
	}
	return "the attestation key " + id + " is not enrolled"
}

// ekCertReason explains why an EK certificate was not accepted.
func ekCertReason(err error) string {
	switch {
	case errors.Is(err, errNoEKCert):
		return "the TPM has no endorsement key certificate"
	case errors.Is(err, errNoEKRoots):
		return "the PDP trusts no endorsement key certificate authority"
	case errors.Is(err, errEKCertKey):
		return "the endorsement key certificate is for another key"
	case errors.Is(err, errEKCertUsage):
		return "the endorsement key certificate is not marked for endorsement keys"
	case err != nil:
		return "the endorsement key certificate is not issued by a trusted TPM manufacturer"
	}
	return "its enrollment is pending"
}

// isolateReasons lists what keeps a trusted endpoint from being allowed.
func (s *session) isolateReasons() []string {
	ev := s.result
	if ev == nil {
		return nil
	}
	var out []string
	if ev.refs.checked && ev.refs.match == "" {
		for _, m := range ev.refs.mismatches {
			out = append(out, mismatchReason(m))
		}
	}
	switch {
	case ev.bootUnreadable:
		out = append(out, "the measured-boot event log could not be read")
	case ev.boot != nil && !ev.bootReplayed:
		out = append(out, "the measured-boot event log does not replay to the quoted PCRs ("+strings.Join(ev.boot.Mismatches, ", ")+"): the firmware or boot loader measured something the log hides")
	case ev.bootAbsent && s.v.cfg.RequireBootLog:
		out = append(out, "the endpoint did not send its measured-boot event log")
	}
	switch {
	case ev.imaUnreadable:
		out = append(out, "the IMA measurement log could not be read")
	case ev.imaNoPCR:
		out = append(out, "the quote does not cover PCR 10, so the IMA measurement log cannot be checked")
	case !ev.imaAbsent && !ev.imaReplayed:
		out = append(out, "the IMA measurement log does not replay to the quoted PCR 10: measurements were hidden or altered")
	case ev.imaAbsent && s.v.cfg.RequireIMALog:
		out = append(out, "the endpoint did not send its IMA measurement log")
	}
	if n := len(ev.imaViolations); n > 0 {
		v := ev.imaViolations[0]
		msg := fmt.Sprintf("IMA measured %d file(s) the allowlist does not accept, e.g. %s (%s): remove or update them, or add them to the allowlist", n, v.Path, v.Reason)
		out = append(out, msg)
	}
	return out
}

// facts builds the tpm facts, with the ima facts under FactsIMA. Every
// fact is present, with a zero value when unknown, except tpm.secure_boot,
// which is present only when the boot log says.
func (s *session) facts() map[string]any {
	f := map[string]any{
		"quote_verified":    false,
		"ak":                "",
		"ak_alg":            "",
		"enrolled":          false,
		"enrollment":        "",
		"banks":             []any{},
		"pcrs":              map[string]any{},
		"reference":         "",
		"pcrs_match":        false,
		"pcr_mismatches":    []any{},
		"reset_count":       int64(0),
		"restart_count":     int64(0),
		"clock":             int64(0),
		"eventlog_replayed": false,
		"eventlog_events":   int64(0),
		"boot_loaders":      []any{},
		"kernels":           []any{},
		"kernel_cmdline":    "",
	}
	imaf := map[string]any{
		"replayed":     false,
		"entries":      int64(0),
		"allowlist_ok": false,
		"violations":   []any{},
		"template":     "",
	}
	f[FactsIMA] = imaf
	if s.ak != nil {
		f["ak"], f["ak_alg"] = s.ak.id, s.ak.alg
	}
	if s.rec != nil && s.rec.Status == StatusApproved {
		f["enrolled"], f["enrollment"] = true, s.rec.Method
	}
	q := s.quote
	if q == nil {
		return f
	}
	f["quote_verified"] = len(s.denied) == 0
	f["reset_count"], f["restart_count"] = int64(q.resetCount), int64(q.restartCount)
	f["clock"] = int64(min(q.clock, 1<<63-1))
	banks := make([]any, 0, len(q.pcrs))
	pcrs := make(map[string]any, len(q.pcrs))
	for _, bank := range sortedKeys(q.pcrs) {
		banks = append(banks, BankName(bank))
		m := make(map[string]any, len(q.pcrs[bank]))
		for i, v := range q.pcrs[bank] {
			m[strconv.Itoa(i)] = hex.EncodeToString(v)
		}
		pcrs[BankName(bank)] = m
	}
	f["banks"], f["pcrs"] = banks, pcrs
	ev := s.result
	if ev == nil {
		return f
	}
	f["reference"] = ev.refs.match
	f["pcrs_match"] = ev.refs.match != ""
	f["pcr_mismatches"] = toList(ev.refs.mismatches)
	if b := ev.boot; b != nil {
		f["eventlog_replayed"] = ev.bootReplayed
		f["eventlog_events"] = int64(b.Events)
		if b.SecureBoot != nil {
			f["secure_boot"] = *b.SecureBoot
		}
		f["boot_loaders"] = toList(b.BootLoaders)
		f["kernels"] = toList(b.Kernels)
		f["kernel_cmdline"] = strings.ToValidUTF8(b.KernelCmdline, "\uFFFD")
	}
	if ev.imaReplayed {
		imaf["replayed"] = true
		imaf["entries"] = int64(ev.imaEntries)
		imaf["template"] = strings.ToValidUTF8(ev.imaTemplate, "\uFFFD")
		imaf["allowlist_ok"] = ev.imaChecked && len(ev.imaViolations) == 0
		vs := make([]any, 0, len(ev.imaViolations))
		for _, v := range ev.imaViolations {
			vs = append(vs, map[string]any{
				"path":   strings.ToValidUTF8(v.Path, "\uFFFD"),
				"digest": v.Digest,
				"reason": v.Reason,
			})
		}
		imaf["violations"] = vs
	}
	return f
}

func toList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return slices.Clip(out)
}
