package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// loadOptionsTag is the EV_EVENT_TAG id the Linux EFI stub uses for the kernel's load options
// (LOAD_OPTIONS_EVENT_TAG_ID in drivers/firmware/efi/libstub/efistub.h).
const loadOptionsTag = 0x8F3B22ED

// efiGlobalVariable is EFI_GLOBAL_VARIABLE {8BE4DF61-93CA-11D2-AA0D-00E098032B8C} in its
// on-wire (mixed-endian) form (UEFI 2.10, section 3.3).
var efiGlobalVariable = []byte{0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}

// maxCmdline caps the kernel command line taken from a log (the kernel's own limit on x86
// is 2048 bytes; COMMAND_LINE_SIZE is at most 4096 on other architectures).
const maxCmdline = 4096

// factSource says which events the facts may be read from: the bank whose digests they use
// and which PCRs were verified against the quote in that bank.
type factSource struct {
	bank     int // index into parsedLog.algs
	alg      uint16
	newHash  func() hash.Hash
	verified *[NumPCRs]bool
}

// factDigest returns the fact bank's digest of event i.
func (l *parsedLog) factDigest(fs factSource, i int) []byte { return l.digest(i, fs.bank) }

// matches reports whether the fact bank's digest of event i is the hash of one of candidates:
// the event data is believed only when the measured digest covers it.
func (l *parsedLog) matches(fs factSource, i int, candidates ...[]byte) bool {
	d := l.factDigest(fs, i)
	if d == nil {
		return false
	}
	h := fs.newHash()
	for _, c := range candidates {
		h.Reset()
		h.Write(c)
		if bytes.Equal(h.Sum(nil), d) {
			return true
		}
	}
	return false
}

// matchesGRUB reports whether event i is a GRUB string measurement: GRUB logs
// "<prefix><string>\0" and measures only <string> (grub-core/commands/tpm.c,
// grub_tpm_verify_string).
func (l *parsedLog) matchesGRUB(fs factSource, i int, prefix string) bool {
	s := bytes.TrimPrefix(bytes.TrimRight(l.events[i].data, "\x00"), []byte(prefix))
	return l.matches(fs, i, s)
}

// facts fills the boot facts of res from the events of verified PCRs.
func (l *parsedLog) facts(fs factSource, res *Result) {
	res.SecureBoot = l.secureBoot(fs)
	l.bootChain(fs, res)
}

// secureBoot reads the SecureBoot variable from EV_EFI_VARIABLE_DRIVER_CONFIG in PCR 7 (PFP
// 10.4.4, 3.3.4.8). It returns nil when PCR 7 is not verified or the log has no SecureBoot
// variable; false when the variable is 0, or cannot be believed (its digest does not cover its
// data, it appears twice or after the PCR 7 separator, its value is not one byte), or a UEFI
// debugger was present ("UEFI Debug Mode" EV_EFI_ACTION in PCR 7).
func (l *parsedLog) secureBoot(fs factSource) *bool {
	if !fs.verified[7] {
		return nil
	}
	var (
		seen, value, bad, debug, separator bool
	)
	for i, e := range l.events {
		if e.pcr != 7 {
			continue
		}
		switch e.typ {
		case evSeparator:
			separator = true
		case evEFIAction:
			if string(e.data) == "UEFI Debug Mode" {
				debug = true
			}
		case evEFIVariableDriverConfig:
			guid, name, data, ok := parseUEFIVariable(e.data)
			if !ok || !bytes.Equal(guid, efiGlobalVariable) || name != "SecureBoot" {
				continue
			}
			if seen || separator || len(data) != 1 || !l.matches(fs, i, e.data) {
				bad = true
			}
			seen = true
			value = len(data) == 1 && data[0] == 1
		}
	}
	if !seen {
		return nil
	}
	v := value && !bad && !debug
	return &v
}

// parseUEFIVariable parses UEFI_VARIABLE_DATA (PFP 10.3.3): VariableName GUID, UINT64
// UnicodeNameLength (in CHAR16), UINT64 VariableDataLength, UnicodeName, VariableData.
func parseUEFIVariable(b []byte) (guid []byte, name string, data []byte, ok bool) {
	if len(b) < 32 {
		return nil, "", nil, false
	}
	guid = b[:16]
	nameLen := binary.LittleEndian.Uint64(b[16:24])
	dataLen := binary.LittleEndian.Uint64(b[24:32])
	rest := uint64(len(b) - 32)
	if nameLen > rest/2 || dataLen > rest-2*nameLen {
		return nil, "", nil, false
	}
	nb := b[32 : 32+2*nameLen]
	u := make([]uint16, nameLen)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(nb[2*i:])
	}
	data = b[32+2*nameLen : 32+2*nameLen+dataLen]
	return guid, string(utf16.Decode(u)), data, true
}

// bootChain fills BootLoaders, Kernels and KernelCmdline.
//
//   - BootLoaders: the digests of every EV_EFI_BOOT_SERVICES_APPLICATION in PCR 4, in log order
//     (shim, GRUB, systemd-boot, a UKI, a kernel EFI stub loaded through LoadImage).
//   - KernelCmdline: the last command line the log carries in clear and whose digest covers it:
//     GRUB's "kernel_cmdline: <kernel path> <arguments>" EV_IPL in PCR 8 (reported without the
//     "kernel_cmdline: " prefix), systemd-boot/systemd-stub's UTF-16 EV_IPL in PCR 8 or 12, or
//     an EV_EVENT_TAG with LOAD_OPTIONS_EVENT_TAG_ID in PCR 8, 9 or 12 whose payload is the
//     command line (the Linux EFI stub logs only a description there, so nothing is reported
//     for it).
//   - Kernels: when GRUB logged the kernel it boots (the path in "kernel_cmdline:" or in a
//     "grub_cmd: linux…" command), the digests of the PCR 9 EV_IPL events that measured that
//     path (GRUB's file digest), plus the PCR 4 boot applications measured after that command
//     (the firmware's Authenticode digest when GRUB starts the kernel through LoadImage).
//     Without GRUB events in PCR 8, the last EV_EFI_BOOT_SERVICES_APPLICATION in PCR 4 (the
//     EFI stub that a direct, shim or systemd-boot boot ends in). When the log shows GRUB but
//     PCRs 8 and 9 were not verified, Kernels stays empty: quote PCRs 8 and 9 to get it. The PCR 9 path labels are event data the
//     PCR does not cover; the digests are covered.
func (l *parsedLog) bootChain(fs factSource, res *Result) {
	var (
		apps        []int // event indexes of PCR 4 applications
		kernelPath  string
		linuxCmdAt  = -1
		cmdline     string
		haveCmdline bool
		grub        bool
	)
	for i, e := range l.events {
		if e.typ == evNoAction {
			continue
		}
		if e.pcr == 8 && e.typ == evIPL && (bytes.HasPrefix(e.data, []byte("grub_cmd: ")) || bytes.HasPrefix(e.data, []byte("kernel_cmdline: "))) {
			grub = true
		}
		if !fs.verified[e.pcr] {
			continue
		}
		switch {
		case e.pcr == 4 && e.typ == evEFIBootServicesApplication:
			apps = append(apps, i)
		case e.pcr == 8 && e.typ == evIPL && bytes.HasPrefix(e.data, []byte("kernel_cmdline: ")):
			if !l.matchesGRUB(fs, i, "kernel_cmdline: ") {
				continue
			}
			s := strings.TrimPrefix(string(bytes.TrimRight(e.data, "\x00")), "kernel_cmdline: ")
			if len(s) <= maxCmdline && utf8.ValidString(s) {
				cmdline, haveCmdline = s, true
				kernelPath, _, _ = strings.Cut(s, " ")
			}
		case e.pcr == 8 && e.typ == evIPL && bytes.HasPrefix(e.data, []byte("grub_cmd: linux")):
			if !l.matchesGRUB(fs, i, "grub_cmd: ") {
				continue
			}
			s := string(bytes.TrimRight(e.data, "\x00"))
			cmd, args, _ := strings.Cut(strings.TrimPrefix(s, "grub_cmd: "), " ")
			if cmd == "linux" || cmd == "linuxefi" || cmd == "linux16" {
				kernelPath, _, _ = strings.Cut(args, " ")
				linuxCmdAt = i
			}
		case (e.pcr == 8 || e.pcr == 12) && e.typ == evIPL:
			if s, ok := utf16String(e.data); ok && l.matches(fs, i, e.data, trimUTF16NUL(e.data)) {
				cmdline, haveCmdline = s, true
			}
		case (e.pcr == 8 || e.pcr == 9 || e.pcr == 12) && e.typ == evEventTag:
			if len(e.data) < 8 || binary.LittleEndian.Uint32(e.data) != loadOptionsTag {
				continue
			}
			n := binary.LittleEndian.Uint32(e.data[4:])
			if uint64(n) != uint64(len(e.data)-8) {
				continue
			}
			p := e.data[8:]
			if !l.matches(fs, i, p, trimUTF16NUL(p), bytes.TrimRight(p, "\x00")) {
				continue
			}
			if s, ok := utf16String(p); ok {
				cmdline, haveCmdline = s, true
			} else if s := string(bytes.TrimRight(p, "\x00")); len(s) <= maxCmdline && utf8.ValidString(s) {
				cmdline, haveCmdline = s, true
			}
		}
	}
	if haveCmdline {
		res.KernelCmdline = cmdline
	}
	for _, i := range apps {
		res.BootLoaders = append(res.BootLoaders, hex.EncodeToString(l.factDigest(fs, i)))
	}
	if kernelPath != "" && fs.verified[9] {
		for i, e := range l.events {
			if e.pcr == 9 && e.typ == evIPL && string(bytes.TrimRight(e.data, "\x00")) == kernelPath {
				if d := l.factDigest(fs, i); d != nil {
					res.Kernels = appendUnique(res.Kernels, hex.EncodeToString(d))
				}
			}
		}
	}
	if kernelPath != "" {
		for _, i := range apps {
			if linuxCmdAt >= 0 && i > linuxCmdAt {
				res.Kernels = appendUnique(res.Kernels, hex.EncodeToString(l.factDigest(fs, i)))
			}
		}
	} else if len(apps) > 0 && !grub {
		res.Kernels = []string{hex.EncodeToString(l.factDigest(fs, apps[len(apps)-1]))}
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// trimUTF16NUL drops trailing UTF-16 NUL code units.
func trimUTF16NUL(b []byte) []byte {
	for len(b) >= 2 && b[len(b)-2] == 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-2]
	}
	return b
}

// utf16String decodes a UTF-16LE command line as systemd logs it. It accepts only text that
// looks like UTF-16 (an even length and an ASCII first character, whose high byte is 0) and
// that decodes to printable text.
func utf16String(b []byte) (string, bool) {
	b = trimUTF16NUL(b)
	if len(b) < 2 || len(b)%2 != 0 || b[1] != 0 || b[0] == 0 || len(b)/2 > maxCmdline {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 && r != '\t' {
			return "", false
		}
	}
	return s, true
}
