package tpmimv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ReferenceSet is one named set of known-good PCR values: bank (TPM_ALG_ID)
// → PCR index → the allowed values. Quoted PCRs match the set when every
// PCR it names, in every bank it names, equals one of its allowed values; a
// bank or PCR the quote lacks does not match.
type ReferenceSet struct {
	Name string
	PCRs map[uint16]map[int][][]byte
}

// Caps of a reference file.
const (
	maxReferenceFile   = 4 << 20
	maxReferenceSets   = 1000
	maxReferenceValues = 64 // allowed values of one PCR
)

// refResult is the outcome of checking PCR values against reference sets.
type refResult struct {
	checked    bool     // there were sets to check against
	match      string   // name of the first matching set
	mismatches []string // of the closest set when none matches: "sha256:7"
}

// matchReferences checks verified PCR values against sets, in order: the
// first set that matches wins. When none matches, the mismatches are those
// of the set with the fewest.
func matchReferences(sets []ReferenceSet, pcrs map[uint16]map[int][]byte) refResult {
	r := refResult{checked: len(sets) > 0}
	var best []string
	bestN := -1
	for _, set := range sets {
		mm := setMismatches(set, pcrs)
		if len(mm) == 0 {
			return refResult{checked: true, match: set.Name}
		}
		if bestN < 0 || len(mm) < bestN {
			best, bestN = mm, len(mm)
		}
	}
	r.mismatches = best
	return r
}

// setMismatches lists the PCRs of set that pcrs do not match, banks and
// PCRs in ascending order.
func setMismatches(set ReferenceSet, pcrs map[uint16]map[int][]byte) []string {
	var out []string
	for _, bank := range sortedKeys(set.PCRs) {
		for _, idx := range sortedKeys(set.PCRs[bank]) {
			v, ok := pcrs[bank][idx]
			if ok && slices.ContainsFunc(set.PCRs[bank][idx], func(a []byte) bool { return bytes.Equal(a, v) }) {
				continue
			}
			out = append(out, BankName(bank)+":"+strconv.Itoa(idx))
		}
	}
	return out
}

func sortedKeys[K uint16 | int, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// pcrPurpose names what a PC Client PCR measures (TCG PC Client Platform
// Firmware Profile §3.3.4; Linux and systemd use of PCRs 8–15), and a hint
// for when it differs from the reference.
var pcrPurpose = [...]struct{ name, hint string }{
	0:  {"firmware code", "update the reference after a firmware update, or restore the approved firmware"},
	1:  {"firmware configuration", "restore the approved firmware settings, or update the reference"},
	2:  {"option ROM code", "remove unapproved expansion cards or update their firmware reference"},
	3:  {"option ROM configuration", "restore the expansion cards' approved settings"},
	4:  {"boot loader", "reinstall the approved boot loader and kernel"},
	5:  {"boot loader configuration and partition table", "restore the approved boot configuration"},
	6:  {"platform state transitions", "power the endpoint off and on, then reconnect"},
	7:  {"Secure Boot policy", "enable Secure Boot and restore the approved key databases"},
	8:  {"kernel command line", "boot with the approved kernel command line"},
	9:  {"kernel and initrd", "boot the approved kernel and initrd"},
	10: {"IMA measurements", "remove files that are not approved and reboot"},
	11: {"unified kernel image", "boot the approved unified kernel image"},
	12: {"kernel command line and credentials", "boot with the approved command line"},
	13: {"system extensions", "remove unapproved system extensions"},
	14: {"shim MOK certificates", "restore the approved machine owner keys"},
	15: {"system identity", "restore the approved system identity"},
}

// mismatchReason explains one "bank:index" mismatch for admins and the
// endpoint, with a remediation hint where there is one.
func mismatchReason(m string) string {
	bank, idx, _ := strings.Cut(m, ":")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(pcrPurpose) {
		return fmt.Sprintf("PCR %s (%s bank) differs from the reference values", idx, bank)
	}
	p := pcrPurpose[i]
	return fmt.Sprintf("PCR %d (%s, %s bank) differs from the reference values: %s", i, p.name, bank, p.hint)
}

// LoadReferenceFile reads reference sets from a YAML file: a list of
// {name, pcrs: {bank: {index: [hex, ...]}}} (a single hex string stands
// for a list of one), or a policy file, whose `reference_values:` it
// reads. Banks are sha1, sha256, sha384 and sm3_256; values are hex of the
// bank's digest size, optionally 0x-prefixed. Unknown fields are errors.
func LoadReferenceFile(path string) ([]ReferenceSet, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tpmimv: %w", err)
	}
	if st.Size() > maxReferenceFile {
		return nil, fmt.Errorf("tpmimv: %s: larger than %d bytes", path, maxReferenceFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tpmimv: %w", err)
	}
	sets, err := ParseReferences(data)
	if err != nil {
		// "tpmimv: invalid reference values: ref.yaml: line 3: ..."
		detail := strings.TrimPrefix(err.Error(), ErrReferenceFile.Error()+": ")
		return nil, fmt.Errorf("%w: %s: %s", ErrReferenceFile, path, detail)
	}
	return sets, nil
}

// ErrReferenceFile is wrapped by the errors of ParseReferences.
var ErrReferenceFile = errors.New("tpmimv: invalid reference values")

// ParseReferences parses the reference file format of LoadReferenceFile.
func ParseReferences(data []byte) ([]ReferenceSet, error) {
	if len(data) > maxReferenceFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrReferenceFile, maxReferenceFile)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReferenceFile, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrReferenceFile)
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "reference_values" {
				list = root.Content[i+1]
			}
		}
		if list == nil {
			return nil, fmt.Errorf("%w: line %d: want a list of reference sets or a policy file with reference_values", ErrReferenceFile, root.Line)
		}
		root = list
	}
	if root.Kind != yaml.SequenceNode {
		return nil, refErr(root, "want a list of reference sets")
	}
	if len(root.Content) > maxReferenceSets {
		return nil, refErr(root, "more than %d reference sets", maxReferenceSets)
	}
	var sets []ReferenceSet
	for _, n := range root.Content {
		set, err := parseReferenceSet(n)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(sets, func(s ReferenceSet) bool { return s.Name == set.Name }) {
			return nil, refErr(n, "reference set %q given twice", set.Name)
		}
		sets = append(sets, set)
	}
	return sets, nil
}

func refErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrReferenceFile, n.Line, fmt.Sprintf(format, args...))
}

// parseReferenceSet reads {name, groups, pcrs}; groups (as policy files
// have them) are accepted and ignored.
func parseReferenceSet(n *yaml.Node) (ReferenceSet, error) {
	var set ReferenceSet
	if n.Kind != yaml.MappingNode {
		return set, refErr(n, "a reference set must be a mapping with name and pcrs")
	}
	var pcrs *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return set, refErr(v, "name must be a non-empty string")
			}
			set.Name = v.Value
		case "groups":
		case "pcrs":
			pcrs = v
		default:
			return set, refErr(k, "unknown field %q (name, pcrs)", k.Value)
		}
	}
	if set.Name == "" {
		return set, refErr(n, "reference set without a name")
	}
	if pcrs == nil || pcrs.Kind != yaml.MappingNode || len(pcrs.Content) == 0 {
		return set, refErr(n, "reference set %q: pcrs must map banks to PCR values", set.Name)
	}
	set.PCRs = make(map[uint16]map[int][][]byte)
	for i := 0; i+1 < len(pcrs.Content); i += 2 {
		k, v := pcrs.Content[i], pcrs.Content[i+1]
		alg, ok := BankAlg(k.Value)
		if !ok || alg == algSHA512 {
			return set, refErr(k, "reference set %q: unknown bank %q (sha1, sha256, sha384, sm3_256)", set.Name, k.Value)
		}
		if _, dup := set.PCRs[alg]; dup {
			return set, refErr(k, "reference set %q: bank %s given twice", set.Name, k.Value)
		}
		if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
			return set, refErr(v, "reference set %q: %s must map PCR indexes to digests", set.Name, k.Value)
		}
		bank := make(map[int][][]byte)
		for j := 0; j+1 < len(v.Content); j += 2 {
			ik, iv := v.Content[j], v.Content[j+1]
			idx, err := strconv.Atoi(ik.Value)
			if err != nil || idx < 0 || idx > maxPCRIndex {
				return set, refErr(ik, "reference set %q: PCR index %q: want 0 to %d", set.Name, ik.Value, maxPCRIndex)
			}
			if _, dup := bank[idx]; dup {
				return set, refErr(ik, "reference set %q: PCR %d given twice", set.Name, idx)
			}
			vals := []*yaml.Node{iv}
			if iv.Kind == yaml.SequenceNode {
				vals = iv.Content
			}
			if len(vals) == 0 || len(vals) > maxReferenceValues {
				return set, refErr(iv, "reference set %q: PCR %d: want 1 to %d values", set.Name, idx, maxReferenceValues)
			}
			for _, vn := range vals {
				s := strings.TrimPrefix(strings.TrimPrefix(vn.Value, "0x"), "0X")
				b, err := hex.DecodeString(s)
				if vn.Kind != yaml.ScalarNode || err != nil || len(b) != digestSize(alg) {
					return set, refErr(vn, "reference set %q: %s PCR %d: want %d bytes of hex", set.Name, k.Value, idx, digestSize(alg))
				}
				bank[idx] = append(bank[idx], b)
			}
		}
		set.PCRs[alg] = bank
	}
	return set, nil
}
