package eventlog

import "errors"

// MaxLogSize caps the size of a measured-boot log accepted by Replay and Compute.
const MaxLogSize = 16 << 20

// TPM_ALG_ID values of the PCR banks this package replays (TCG Algorithm Registry, section 6).
const (
	AlgSHA1   uint16 = 0x0004
	AlgSHA256 uint16 = 0x000B
	AlgSHA384 uint16 = 0x000C
	AlgSHA512 uint16 = 0x000D
	AlgSM3256 uint16 = 0x0012
)

// ErrMalformed is wrapped by every error about a log that cannot be parsed.
var ErrMalformed = errors.New("eventlog: malformed log")

// ErrTooLarge is returned for logs larger than MaxLogSize or with more events or digests than
// the caps allow.
var ErrTooLarge = errors.New("eventlog: log too large")

// Result is the outcome of replaying a measured-boot log against quoted PCR values.
type Result struct {
	// Replayed is true when every checked PCR in every checked bank equals the replay.
	Replayed bool
	// Events is the number of events in the log, the Spec ID header event included.
	Events int
	// Mismatches names the PCRs whose quoted value differs from the replay, as "sha256:7".
	Mismatches []string
	// SecureBoot is the SecureBoot variable from EV_EFI_VARIABLE_DRIVER_CONFIG, nil when absent.
	SecureBoot *bool
	// BootLoaders are the hex digests of the EV_EFI_BOOT_SERVICES_APPLICATION events in PCR 4.
	BootLoaders []string
	// Kernels are the hex digests of the kernel images the log measured.
	Kernels []string
	// KernelCmdline is the kernel command line as measured into PCR 8 or 9.
	KernelCmdline string
	// Computed holds the replayed values of every bank in the log: bank → PCR → digest.
	Computed map[uint16]map[int][]byte
}

// Replay parses a TCG PC Client binary measured-boot log and checks it against pcrs.
func Replay(log []byte, pcrs map[uint16]map[int][]byte) (*Result, error) {
	return nil, errors.New("eventlog: not implemented")
}

// Compute replays log without checking it against quoted values.
func Compute(log []byte) (map[uint16]map[int][]byte, error) {
	return nil, errors.New("eventlog: not implemented")
}
