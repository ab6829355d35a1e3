package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// windowsDump reads the log and the PCR values a real TPM reported in go-attestation's
// windows_gcp_shielded_vm.json (a Windows Shielded VM with Secure Boot on).
func windowsDump(t *testing.T) ([]byte, map[uint16]map[int][]byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(attestTestdata(t), "windows_gcp_shielded_vm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Log struct {
			PCRs []struct {
				Index     int
				Digest    []byte
				DigestAlg int
			}
			Raw []byte
		}
	}
	if err := json.Unmarshal(raw, &dump); err != nil {
		t.Fatal(err)
	}
	pcrs := map[uint16]map[int][]byte{}
	for _, p := range dump.Log.PCRs {
		alg := map[int]uint16{3: AlgSHA1, 5: AlgSHA256}[p.DigestAlg]
		if alg == 0 {
			t.Fatalf("unexpected digest algorithm %d", p.DigestAlg)
		}
		if pcrs[alg] == nil {
			pcrs[alg] = map[int][]byte{}
		}
		pcrs[alg][p.Index] = p.Digest
	}
	return dump.Log.Raw, pcrs
}

func TestWindowsLogAgainstRealTPMValues(t *testing.T) {
	log, pcrs := windowsDump(t)
	res, err := Replay(log, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replayed || len(res.Mismatches) != 0 {
		t.Fatalf("Replayed = %v, Mismatches = %v", res.Replayed, res.Mismatches)
	}
	if res.SecureBoot == nil || !*res.SecureBoot {
		t.Errorf("SecureBoot = %v, want true", ptr(res.SecureBoot))
	}
	if len(res.BootLoaders) == 0 || len(res.Kernels) != 1 || res.Kernels[0] != res.BootLoaders[len(res.BootLoaders)-1] {
		t.Errorf("BootLoaders = %v, Kernels = %v", res.BootLoaders, res.Kernels)
	}

	// PCR 7 flipped: mismatch named, and Secure Boot no longer believed.
	pcrs[AlgSHA1][7] = append([]byte(nil), pcrs[AlgSHA1][7]...)
	pcrs[AlgSHA1][7][0] ^= 1
	res, err = Replay(log, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed || !equalStrings(res.Mismatches, []string{"sha1:7"}) || res.SecureBoot != nil {
		t.Errorf("Replayed = %v, Mismatches = %v, SecureBoot = %v", res.Replayed, res.Mismatches, ptr(res.SecureBoot))
	}
}

func TestFactsFromRealLogs(t *testing.T) {
	for _, tc := range []struct {
		log        string
		secureBoot any
		loaders    int
		kernel     string // prefix of Kernels[0], "" for none
		cmdline    string // prefix
	}{
		{"ubuntu_2104_shielded_vm_no_secure_boot_eventlog", false, 2, "47e598b7b944fe88", "/boot/vmlinuz-5.11.0-1006-gcp root=PARTUUID=6443a6ae-e5e9-4df7-9a06-d1329e50f33c ro"},
		{"coreos_36_shielded_vm_no_secure_boot_eventlog", false, 2, "38640a1e99cd2e0e", "(hd0,gpt3)/ostree/fedora-coreos-"},
		{"sb_cert_eventlog", true, 3, "5df7ee46563159c6", ""},
		{"option_rom_eventlog", true, 1, "078f4c1f35b8f939", ""},
		// Its SecureBoot variable is empty: not enabled.
		{"crypto_agile_eventlog", false, 2, "28710f04aacfa162", ""},
	} {
		t.Run(tc.log, func(t *testing.T) {
			log := readLog(t, tc.log)
			pcrs, err := Compute(log)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Replay(log, pcrs)
			if err != nil {
				t.Fatal(err)
			}
			if got := ptr(res.SecureBoot); got != tc.secureBoot {
				t.Errorf("SecureBoot = %v, want %v", got, tc.secureBoot)
			}
			if len(res.BootLoaders) != tc.loaders {
				t.Errorf("BootLoaders = %v, want %d", res.BootLoaders, tc.loaders)
			}
			if tc.kernel == "" && len(res.Kernels) != 0 || tc.kernel != "" && (len(res.Kernels) != 1 || !strings.HasPrefix(res.Kernels[0], tc.kernel)) {
				t.Errorf("Kernels = %v, want [%s…]", res.Kernels, tc.kernel)
			}
			if !strings.HasPrefix(res.KernelCmdline, tc.cmdline) || (tc.cmdline == "") != (res.KernelCmdline == "") {
				t.Errorf("KernelCmdline = %q, want %q…", res.KernelCmdline, tc.cmdline)
			}
		})
	}
}

// TestFactsNeedVerifiedPCRs: facts come only from PCRs that were quoted and matched.
func TestFactsNeedVerifiedPCRs(t *testing.T) {
	log := readLog(t, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog")
	all, err := Compute(log)
	if err != nil {
		t.Fatal(err)
	}
	only := func(alg uint16, idx ...int) map[uint16]map[int][]byte {
		m := map[int][]byte{}
		for _, i := range idx {
			m[i] = all[alg][i]
		}
		return map[uint16]map[int][]byte{alg: m}
	}
	// The default quote selection (0–7): no command line, no kernel (GRUB is in the log, so
	// the last PCR 4 application is not taken for the kernel).
	res, err := Replay(log, only(AlgSHA256, 0, 1, 2, 3, 4, 5, 6, 7))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replayed || res.KernelCmdline != "" || len(res.Kernels) != 0 || len(res.BootLoaders) != 2 || res.SecureBoot == nil {
		t.Errorf("0–7: %+v", res)
	}
	// Without PCR 7 nothing is said about Secure Boot; without PCR 4, no boot loaders.
	res, err = Replay(log, only(AlgSHA256, 0, 8, 9))
	if err != nil {
		t.Fatal(err)
	}
	if res.SecureBoot != nil || len(res.BootLoaders) != 0 || res.KernelCmdline == "" || len(res.Kernels) != 1 {
		t.Errorf("0,8,9: %+v", res)
	}
	// Facts in the sha1 bank when only sha1 was quoted.
	res, err = Replay(log, only(AlgSHA1, 4, 8, 9))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BootLoaders) != 2 || len(res.BootLoaders[0]) != 40 || len(res.Kernels) != 1 || len(res.Kernels[0]) != 40 {
		t.Errorf("sha1: BootLoaders %v Kernels %v", res.BootLoaders, res.Kernels)
	}
	// A mismatching PCR 8 loses the command line.
	bad := only(AlgSHA256, 8, 9)
	bad[AlgSHA256][8] = make([]byte, 32)
	res, err = Replay(log, bad)
	if err != nil {
		t.Fatal(err)
	}
	if res.KernelCmdline != "" || len(res.Kernels) != 0 {
		t.Errorf("bad PCR 8: cmdline %q kernels %v", res.KernelCmdline, res.Kernels)
	}
}

func utf16LE(s string, nul bool) []byte {
	u := utf16.Encode([]rune(s))
	if nul {
		u = append(u, 0)
	}
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func uefiVariable(guid []byte, name string, data []byte) []byte {
	b := append([]byte(nil), guid...)
	n := utf16.Encode([]rune(name))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(n)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = append(b, utf16LE(name, false)...)
	return append(b, data...)
}

func TestConstructedFacts(t *testing.T) {
	sep := []byte{0, 0, 0, 0}
	sb1 := uefiVariable(efiGlobalVariable, "SecureBoot", []byte{1})
	sb0 := uefiVariable(efiGlobalVariable, "SecureBoot", []byte{0})
	cmd := "root=/dev/vda2 ro quiet"
	sdCmd := utf16LE(cmd, false)
	tagged := func(tag uint32, p []byte) []byte {
		b := le32(le32(nil, tag), uint32(len(p)))
		return append(b, p...)
	}
	grubCmd := func(prefix, s string) testEvent {
		e := testEvent{pcr: 8, typ: evIPL, data: []byte(prefix + s + "\x00")}
		e.digests = map[uint16][]byte{AlgSM3256: testEvent{data: []byte(s)}.digest(AlgSM3256)}
		return e
	}
	for _, tc := range []struct {
		name       string
		events     []testEvent
		secureBoot any
		cmdline    string
		kernels    int
	}{
		{"secure boot on", []testEvent{{pcr: 7, typ: evEFIVariableDriverConfig, data: sb1}, {pcr: 7, typ: evSeparator, data: sep}}, true, "", 0},
		{"secure boot off", []testEvent{{pcr: 7, typ: evEFIVariableDriverConfig, data: sb0}}, false, "", 0},
		{"secure boot digest does not cover data", []testEvent{{pcr: 7, typ: evEFIVariableDriverConfig, data: sb1, digests: map[uint16][]byte{AlgSM3256: testEvent{data: sb0}.digest(AlgSM3256)}}}, false, "", 0},
		{"secure boot after separator", []testEvent{{pcr: 7, typ: evSeparator, data: sep}, {pcr: 7, typ: evEFIVariableDriverConfig, data: sb1}}, false, "", 0},
		{"secure boot twice", []testEvent{{pcr: 7, typ: evEFIVariableDriverConfig, data: sb1}, {pcr: 7, typ: evEFIVariableDriverConfig, data: sb1}}, false, "", 0},
		{"secure boot with debugger", []testEvent{{pcr: 7, typ: evEFIVariableDriverConfig, data: sb1}, {pcr: 7, typ: evEFIAction, data: []byte("UEFI Debug Mode")}}, false, "", 0},
		{"secure boot other GUID", []testEvent{{pcr: 7, typ: evEFIVariableDriverConfig, data: uefiVariable(make([]byte, 16), "SecureBoot", []byte{1})}}, nil, "", 0},
		{"systemd-boot UTF-16 EV_IPL in PCR 12", []testEvent{{pcr: 12, typ: evIPL, data: sdCmd}}, nil, cmd, 0},
		{"systemd-boot UTF-16 with NUL in PCR 8", []testEvent{{pcr: 8, typ: evIPL, data: utf16LE(cmd, true), digests: map[uint16][]byte{AlgSM3256: testEvent{data: sdCmd}.digest(AlgSM3256)}}}, nil, cmd, 0},
		{"tagged load options", []testEvent{{pcr: 9, typ: evEventTag, data: tagged(loadOptionsTag, sdCmd), digests: map[uint16][]byte{AlgSM3256: testEvent{data: sdCmd}.digest(AlgSM3256)}}}, nil, cmd, 0},
		{"tagged description only (Linux EFI stub)", []testEvent{{pcr: 9, typ: evEventTag, data: tagged(loadOptionsTag, []byte("LOADED_IMAGE::LoadOptions\x00")), digests: map[uint16][]byte{AlgSM3256: testEvent{data: sdCmd}.digest(AlgSM3256)}}}, nil, "", 0},
		{"GRUB", []testEvent{
			{pcr: 4, typ: evEFIBootServicesApplication, data: []byte("grub")},
			grubCmd("grub_cmd: ", "linux /vmlinuz "+cmd),
			{pcr: 9, typ: evIPL, data: []byte("/vmlinuz\x00")},
			grubCmd("kernel_cmdline: ", "/vmlinuz "+cmd),
		}, nil, "/vmlinuz " + cmd, 1},
		{"GRUB command line that lies", []testEvent{
			{pcr: 8, typ: evIPL, data: []byte("kernel_cmdline: /vmlinuz evil\x00"), digests: map[uint16][]byte{AlgSM3256: testEvent{data: []byte("/vmlinuz " + cmd)}.digest(AlgSM3256)}},
		}, nil, "", 0},
		{"GRUB kernel through LoadImage", []testEvent{
			{pcr: 4, typ: evEFIBootServicesApplication, data: []byte("grub")},
			grubCmd("grub_cmd: ", "linux /vmlinuz "+cmd),
			{pcr: 9, typ: evIPL, data: []byte("/vmlinuz\x00")},
			{pcr: 4, typ: evEFIBootServicesApplication, data: []byte("kernel")},
		}, nil, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := buildAgile([]uint16{AlgSM3256}, tc.events)
			pcrs, err := Compute(log)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Replay(log, pcrs)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Replayed {
				t.Fatalf("Replayed false: %v", res.Mismatches)
			}
			if got := ptr(res.SecureBoot); got != tc.secureBoot {
				t.Errorf("SecureBoot = %v, want %v", got, tc.secureBoot)
			}
			if res.KernelCmdline != tc.cmdline {
				t.Errorf("KernelCmdline = %q, want %q", res.KernelCmdline, tc.cmdline)
			}
			if len(res.Kernels) != tc.kernels {
				t.Errorf("Kernels = %v, want %d", res.Kernels, tc.kernels)
			}
			for _, k := range res.Kernels {
				if len(k) != 64 {
					t.Errorf("kernel digest %q is not an SM3 digest", k)
				}
			}
		})
	}
}
