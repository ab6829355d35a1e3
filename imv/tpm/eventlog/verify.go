package eventlog

import (
	"bytes"
	"slices"
	"strconv"

	"github.com/google/go-attestation/attest"
)

// Result is the outcome of replaying a measured-boot log against quoted PCR values. The boot
// facts (SecureBoot, BootLoaders, Kernels, KernelCmdline) come only from events of PCRs that
// matched the quote, read with the digests of the fact bank: sha256 if it was checked, else
// sm3_256, else sha1, else sha384, else sha512.
type Result struct {
	// Replayed is true when at least one PCR was checked and every checked PCR in every
	// checked bank equals the replay.
	Replayed bool
	// Events is the number of events in the log, not counting the Spec ID header event.
	Events int
	// Mismatches names the checked PCRs whose quoted value differs from the replay, as
	// "<bank>:<index>" ("sha256:7"), sorted by bank then index.
	Mismatches []string
	// SkippedBanks names the banks of the quoted values that the log does not record or this
	// package cannot hash; their PCRs were not checked.
	SkippedBanks []string
	// SecureBoot is the SecureBoot variable from EV_EFI_VARIABLE_DRIVER_CONFIG in PCR 7 (PFP
	// 10.4.4); nil when PCR 7 was not verified or the log has no such variable. It is false
	// when the variable or the log around it cannot be believed, and for SHA-1/SHA-256 logs
	// also when go-attestation's attest.ParseSecurebootState rejects the PCR 7 events.
	SecureBoot *bool
	// BootLoaders are the hex digests of the EV_EFI_BOOT_SERVICES_APPLICATION events in PCR 4,
	// in log order.
	BootLoaders []string
	// Kernels are the hex digests of the kernel: GRUB's PCR 9 measurement of the kernel it
	// boots, or the last PCR 4 boot application when GRUB is not in the log (see bootChain).
	Kernels []string
	// KernelCmdline is the kernel command line as GRUB (PCR 8) or systemd (PCR 8/12) logged
	// it, "" when absent or unverified.
	KernelCmdline string
	// Computed holds the replayed values of every bank in the log that this package can hash:
	// bank TPM_ALG_ID → PCR index → value (see Compute).
	Computed map[uint16]map[int][]byte
}

// factBanks is the order in which banks are preferred for reading facts.
var factBanks = []uint16{AlgSHA256, AlgSM3256, AlgSHA1, AlgSHA384, AlgSHA512}

// Replay parses a TCG PC Client binary measured-boot log (SHA-1 format or crypto-agile, PFP
// 10.2) and checks it against quoted PCR values pcrs: bank TPM_ALG_ID (0x0004 sha1, 0x000B
// sha256, 0x000C sha384, 0x0012 sm3_256) → PCR index → value.
//
// Only banks and PCRs present in pcrs are checked. A PCR the log extends but pcrs lacks is
// not checked. A PCR in pcrs that the log never extends is checked against its reset value
// (zeros; the startup locality for PCR 0) when its index is below 10, because firmware and
// boot loaders log every extension of PCRs 0–9; PCRs 10–23 without events (IMA's PCR 10,
// DRTM, application PCRs) are not checked. Indexes outside 0–23 are ignored. Banks of pcrs
// that the log does not record are skipped and named in Result.SkippedBanks.
//
// The error is non-nil only for unusable input: a malformed, truncated or oversized log
// (wrapping ErrMalformed or ErrTooLarge). A log that does not match is a Result with
// Replayed false.
//
// The replay of every bank is this package's own; for sha1 and sha256 go-attestation
// replays the log too and must agree, and its Secure Boot checks back the SecureBoot fact.
func Replay(log []byte, pcrs map[uint16]map[int][]byte) (*Result, error) {
	l, err := parse(log)
	if err != nil {
		return nil, err
	}
	rp := l.replay()
	res := &Result{Events: len(l.events), Computed: rp.values()}

	// matched[bank][pcr]: checked and equal; mismatched[pcr]: differs in some bank.
	matched := make(map[uint16]*[NumPCRs]bool)
	var mismatched [NumPCRs]bool
	checked := false
	for _, alg := range sortedKeys(pcrs) {
		br := rp.bank(alg)
		if br == nil {
			res.SkippedBanks = append(res.SkippedBanks, BankName(alg))
			continue
		}
		ok := new([NumPCRs]bool)
		matched[alg] = ok
		want := pcrs[alg]
		for _, idx := range sortedKeys(want) {
			if idx < 0 || idx >= NumPCRs {
				continue
			}
			got := br.pcr[idx]
			if got == nil && !br.broken[idx] {
				if idx >= 10 {
					continue
				}
				got = rp.resetValue(idx, br.size)
			}
			checked = true
			if br.broken[idx] || !bytes.Equal(got, want[idx]) {
				mismatched[idx] = true
				res.Mismatches = append(res.Mismatches, BankName(alg)+":"+strconv.Itoa(idx))
				continue
			}
			ok[idx] = true
		}
	}

	// go-attestation's replay of the sha1 and sha256 banks must agree with ours.
	var sb *attestSecureBoot
	fs, haveFacts := l.factSource(matched, &mismatched)
	var el *attest.EventLog
	parsed := false
	for _, alg := range []uint16{AlgSHA1, AlgSHA256} {
		ok := matched[alg]
		if ok == nil || *ok == ([NumPCRs]bool{}) {
			continue
		}
		if !parsed {
			el, parsed = attestParse(log), true
		}
		if el == nil {
			break
		}
		r := attestVerify(el, alg, pcrs[alg], ok, haveFacts && fs.alg == alg)
		if r == nil {
			continue
		}
		for _, idx := range r.disagree {
			if idx >= 0 && idx < NumPCRs && ok[idx] {
				ok[idx] = false
				mismatched[idx] = true
				res.Mismatches = append(res.Mismatches, BankName(alg)+":"+strconv.Itoa(idx))
			}
		}
		if r.secureBoot != nil {
			sb = r.secureBoot
		}
	}
	slices.SortFunc(res.Mismatches, compareMismatch)
	res.Mismatches = slices.Compact(res.Mismatches)
	res.Replayed = checked && len(res.Mismatches) == 0

	fs, haveFacts = l.factSource(matched, &mismatched)
	if haveFacts {
		l.facts(fs, res)
		if res.SecureBoot != nil && sb != nil && sb.alg == fs.alg {
			v := *res.SecureBoot && sb.ok && sb.enabled
			res.SecureBoot = &v
		}
	}
	return res, nil
}

// factSource picks the bank the facts are read from and the PCRs verified in it: matched in
// that bank and mismatched in none.
func (l *parsedLog) factSource(matched map[uint16]*[NumPCRs]bool, mismatched *[NumPCRs]bool) (factSource, bool) {
	for _, alg := range factBanks {
		ok := matched[alg]
		if ok == nil {
			continue
		}
		var v [NumPCRs]bool
		any := false
		for i := range v {
			v[i] = ok[i] && !mismatched[i]
			any = any || v[i]
		}
		if !any {
			continue
		}
		return factSource{bank: l.bankIndex(alg), alg: alg, newHash: hashFor(alg), verified: &v}, true
	}
	return factSource{}, false
}

// compareMismatch orders "<bank>:<index>" by bank name, then numerically by index.
func compareMismatch(a, b string) int {
	ab, ai := splitMismatch(a)
	bb, bi := splitMismatch(b)
	if ab != bb {
		if ab < bb {
			return -1
		}
		return 1
	}
	return ai - bi
}

func splitMismatch(s string) (string, int) {
	i := len(s) - 1
	for i >= 0 && s[i] != ':' {
		i--
	}
	n, _ := strconv.Atoi(s[i+1:])
	return s[:max(i, 0)], n
}

func sortedKeys[K uint16 | int, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
