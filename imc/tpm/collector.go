package tpmimc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"trustnac/imc"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Defaults of Config.
const (
	DefaultTPM         = "/dev/tpmrm0"
	DefaultEventLog    = "/sys/kernel/security/tpm0/binary_bios_measurements"
	DefaultIMALog      = "/sys/kernel/security/ima/binary_runtime_measurements"
	DefaultMaxLogChunk = 256 << 10
	// MaxMaxLogChunk caps Config.MaxLogChunk: the largest piece a
	// MeasurementLog attribute carries.
	MaxMaxLogChunk = patnc.MaxLogPieceLen
)

// AK algorithms (Config.AKAlg, AK.Alg).
const (
	AKAlgECCP256 = "ecc-p256" // ECC NIST P-256, ECDSA with SHA-256
	AKAlgSM2     = "sm2"      // ECC SM2 P-256, SM2 with SM3-256
)

// EK algorithms (Config.EKAlg).
const (
	EKAlgRSA = "rsa" // TCG default RSA 2048 EK template (go-tpm RSAEKTemplate)
	EKAlgECC = "ecc" // TCG default ECC P-256 EK template (go-tpm ECCEKTemplate)
)

// Sentinel errors callers test.
var (
	// ErrConfig is wrapped by the errors of New for a bad Config.
	ErrConfig = errors.New("tpmimc: bad config")
	// ErrNoBanks: none of the requested PCR banks is active in the TPM.
	ErrNoBanks = errors.New("tpmimc: no requested PCR bank is active")
	// ErrPCRsChanging: the PCRs changed during every quote attempt.
	ErrPCRsChanging = errors.New("tpmimc: PCRs kept changing during the quote")
	// ErrBadRequest is wrapped by the errors for malformed requests
	// (nonce, PCR selection, credential challenge).
	ErrBadRequest = errors.New("tpmimc: bad request")
	// ErrBadResponse is wrapped when the TPM answers something that does
	// not parse.
	ErrBadResponse = errors.New("tpmimc: bad TPM response")
)

// Config configures the TPM collector.
type Config struct {
	// StateDir is where the AK's public and private blobs are kept
	// (created with mode 0700); required.
	StateDir string
	// AKAlg is AKAlgECCP256 (default) or AKAlgSM2.
	AKAlg string
	// EKAlg is EKAlgRSA (default) or EKAlgECC: which EK to report and to
	// activate credentials with.
	EKAlg string
	// EventLog is the measured-boot log; "" means DefaultEventLog, "-"
	// none.
	EventLog string
	// IMALog is the IMA log; "" means DefaultIMALog, "-" none.
	IMALog string
	// MaxLogChunk caps the bytes of one MeasurementLog attribute per
	// round; 0 means DefaultMaxLogChunk, at most MaxMaxLogChunk.
	MaxLogChunk int
	// Enroll, when set and true at the start of a handshake, makes the
	// collector ask for a PSK of the SM channel (a PSK Request of kind
	// patnc.PSKKindTPM); the agent says yes when it holds no PSK or its
	// PSK is past half its lifetime. Needs OnPSK.
	Enroll func() bool
	// OnPSK receives a granted PSK after TPM2_ActivateCredential
	// recovered its key: the agent stores it (mode 0600) under its
	// identity. The PDP may grant the same identity and key again, which
	// the agent takes as a no-op; a new identity is a rotation, and the
	// old PSK stays valid until it expires. Never log the key.
	OnPSK func(identity string, key []byte, expires time.Time)
}

// akKind describes one AK algorithm: curve, signing scheme and the scheme's
// hashes in order of preference; a new AK gets the first the TPM
// implements.
type akKind struct {
	alg    string
	curve  tpm2.TPMECCCurve
	scheme tpm2.TPMAlgID
	hashes []tpm2.TPMAlgID
}

// akKinds are the AK algorithms. An SM2 AK signs with SM3-256; a TPM
// without SM3 (swtpm 0.7 / libtpms 0.9 implements the SM2 curve and scheme
// but no SM3) gets an SM2 AK with SHA-256.
var akKinds = map[string]akKind{
	AKAlgECCP256: {AKAlgECCP256, tpm2.TPMECCNistP256, tpm2.TPMAlgECDSA, []tpm2.TPMAlgID{tpm2.TPMAlgSHA256}},
	AKAlgSM2:     {AKAlgSM2, tpm2.TPMECCSM2P256, tpm2.TPMAlgSM2, []tpm2.TPMAlgID{tpm2.TPMAlgSM3256, tpm2.TPMAlgSHA256}},
}

// Collector is the TPM 2.0 IMC. It implements imc.Collector. Its methods
// are safe for concurrent use; TPM commands are serialised.
type Collector struct {
	tpm  transport.TPM
	cfg  Config
	kind akKind
	log  *slog.Logger

	mu     sync.Mutex // serialises TPM use; guards the fields below
	ak     *AK        // the AK, once loaded or created
	akPriv []byte     // its TPM2B_PRIVATE contents
	ekPub  []byte     // EK TPMT_PUBLIC, once read
	ekCert []byte     // EK certificate (DER), nil if none
}

var _ imc.Collector = (*Collector)(nil)

// New returns a TPM collector using tpm, which it does not close. It
// creates cfg.StateDir but does not touch the TPM. A nil log discards.
func New(tpm transport.TPM, cfg Config, log *slog.Logger) (*Collector, error) {
	if tpm == nil {
		return nil, fmt.Errorf("%w: no TPM", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("%w: StateDir is required", ErrConfig)
	}
	if cfg.AKAlg == "" {
		cfg.AKAlg = AKAlgECCP256
	}
	kind, ok := akKinds[cfg.AKAlg]
	if !ok {
		return nil, fmt.Errorf("%w: AKAlg %q (want %q or %q)", ErrConfig, cfg.AKAlg, AKAlgECCP256, AKAlgSM2)
	}
	switch cfg.EKAlg {
	case "":
		cfg.EKAlg = EKAlgRSA
	case EKAlgRSA, EKAlgECC:
	default:
		return nil, fmt.Errorf("%w: EKAlg %q (want %q or %q)", ErrConfig, cfg.EKAlg, EKAlgRSA, EKAlgECC)
	}
	if cfg.EventLog == "" {
		cfg.EventLog = DefaultEventLog
	}
	if cfg.IMALog == "" {
		cfg.IMALog = DefaultIMALog
	}
	switch {
	case cfg.MaxLogChunk == 0:
		cfg.MaxLogChunk = DefaultMaxLogChunk
	case cfg.MaxLogChunk < 0 || cfg.MaxLogChunk > MaxMaxLogChunk:
		return nil, fmt.Errorf("%w: MaxLogChunk %d not in [1,%d]", ErrConfig, cfg.MaxLogChunk, MaxMaxLogChunk)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("tpmimc: state dir: %w", err)
	}
	return &Collector{tpm: tpm, cfg: cfg, kind: kind, log: log.With("imc", "tpm")}, nil
}

// Name returns "tpm".
func (c *Collector) Name() string { return "tpm" }

// Subtype returns trustnac's TPM PA subtype.
func (c *Collector) Subtype() pbtnc.PASubtype { return pbtnc.SubtypeTrustnacTPM }

// NewSession starts the collector's part of one handshake.
func (c *Collector) NewSession(ctx context.Context) (imc.Session, error) {
	return &session{c: c}, nil
}

// OpenTPM opens a TPM: a character device path such as "/dev/tpmrm0" (the
// kernel's resource manager; "" means DefaultTPM), or "unix:/path" for a
// swtpm serving TPM commands on a Unix socket (`--server type=unixio`).
func OpenTPM(spec string) (transport.TPMCloser, error) {
	if spec == "" {
		spec = DefaultTPM
	}
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("%w: empty socket path", ErrConfig)
		}
		t, err := linuxudstpm.Open(path)
		if err != nil {
			return nil, fmt.Errorf("tpmimc: open %s: %w", spec, err)
		}
		return t, nil
	}
	if !strings.HasPrefix(spec, "/") {
		return nil, fmt.Errorf("%w: TPM %q is neither a device path nor unix:/path", ErrConfig, spec)
	}
	t, err := linuxtpm.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("tpmimc: open %s: %w", spec, err)
	}
	return t, nil
}

// flush flushes a transient handle, logging a failure: a leaked handle
// only costs a slot until the connection (or, on /dev/tpmrm0, the
// resource manager) drops it.
func (c *Collector) flush(h tpm2.TPMHandle) {
	if _, err := (tpm2.FlushContext{FlushHandle: h}).Execute(c.tpm); err != nil {
		c.log.Warn("cannot flush TPM handle", "handle", fmt.Sprintf("%#08x", uint32(h)), "err", err)
	}
}
