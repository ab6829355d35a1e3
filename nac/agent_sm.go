package nac

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"trustnac/imc"
	smkeyimc "trustnac/imc/smkey"
	"trustnac/internal/atomicfile"
	"trustnac/transport/patnc"
	"trustnac/transport/pttls"
	"trustnac/transport/smdtls"
)

// pskFileName is the PSK file's name under the TPM collector's state_dir.
const pskFileName = "sm-psk.json"

// AgentSMConfig configures the agent's SM channel (the `sm` section): with
// it the agent assesses over SM-DTLS (transport/smdtls: RFC 4279 PSK, SM3
// PRF, SM4-GCM records) while it holds a valid PSK, and over PT-TLS
// (RFC 6876, TLS 1.3) otherwise, enrolling for a PSK there when told to.
// Without the section the agent uses PT-TLS only.
type AgentSMConfig struct {
	// Address is the PDP's SM-DTLS UDP address (default: the host of
	// pdp.address, port 271).
	Address string `yaml:"address"`
	// Enroll asks the PDP for a PSK when the agent has none (over PT-TLS)
	// or its PSK is past half its lifetime (over the channel in use);
	// default true when a TPM collector or an sm2_key is configured.
	Enroll *bool `yaml:"enroll"`
	// PSKFile keeps the PSK, mode 0600, replaced atomically (default
	// sm-psk.json in the TPM collector's state_dir, else in
	// /var/lib/trustnac/agent).
	PSKFile string `yaml:"psk_file"`
	// SM2Key is a PEM file with the endpoint's SM2 private key, for
	// enrollment without a TPM: the PDP encrypts the PSK to its registered
	// public key.
	SM2Key string `yaml:"sm2_key"`
	// MTU is the largest datagram sent (default 1200).
	MTU int `yaml:"mtu"`

	// addressDerived is set when Address came from pdp.address, so that a
	// later change of pdp.address (nac agent --pdp) moves it too.
	addressDerived bool
}

// enroll is whether the agent asks for a PSK.
func (c *AgentSMConfig) enroll() bool { return c.Enroll != nil && *c.Enroll }

func (c *AgentSMConfig) resolve(dir string) {
	c.PSKFile = resolve(dir, c.PSKFile)
	c.SM2Key = resolve(dir, c.SM2Key)
}

func (c *AgentSMConfig) setDefaults(a *AgentConfig) {
	if c.Address == "" || c.addressDerived {
		c.addressDerived = true
		host := "127.0.0.1"
		if h, _, err := net.SplitHostPort(a.PDP.Address); err == nil {
			host = h
		}
		c.Address = net.JoinHostPort(host, strconv.Itoa(DefaultSMPort))
	}
	if c.Enroll == nil {
		e := a.Collectors.TPM != nil || c.SM2Key != ""
		c.Enroll = &e
	}
	if c.PSKFile == "" {
		dir := "/var/lib/trustnac/agent"
		if t := a.Collectors.TPM; t != nil && t.StateDir != "" {
			dir = t.StateDir
		}
		c.PSKFile = filepath.Join(dir, pskFileName)
	}
}

func (c *AgentSMConfig) validate(a *AgentConfig) []error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("sm.address: %w", err))
	}
	if c.enroll() && a.Collectors.TPM == nil && c.SM2Key == "" {
		errs = append(errs, errors.New("sm.enroll needs a TPM collector or sm.sm2_key"))
	}
	if c.SM2Key != "" && a.Collectors.TPM != nil {
		errs = append(errs, errors.New("sm.sm2_key is for endpoints without a TPM: the TPM collector enrolls"))
	}
	if c.MTU != 0 && (c.MTU < smdtls.MinMTU || c.MTU > smdtls.MaxMTU) {
		errs = append(errs, fmt.Errorf("sm.mtu %d: want %d to %d", c.MTU, smdtls.MinMTU, smdtls.MaxMTU))
	}
	return errs
}

// agentPSK is the content of the PSK file: the SM-channel PSK the PDP
// issued, as JSON (the key in base64). The file is mode 0600 and replaced
// atomically.
type agentPSK struct {
	Identity string    `json:"identity"`
	Key      []byte    `json:"key"`
	Issued   time.Time `json:"issued"` // when the agent received it
	Expires  time.Time `json:"expires"`
}

// maxPSKFile bounds the PSK file.
const maxPSKFile = 4096

// usable reports whether the PSK can be offered at now.
func (k *agentPSK) usable(now time.Time) bool {
	return len(k.Identity) > 0 && len(k.Identity) <= smdtls.MaxIdentityLen &&
		len(k.Key) >= smdtls.MinPSKLen && len(k.Key) <= smdtls.MaxPSKLen && now.Before(k.Expires)
}

// renewDue reports whether the PSK is past half its lifetime at now, when
// the agent asks for a new one (the PDP issues a new one then; before, it
// delivers the same again).
func (k *agentPSK) renewDue(now time.Time) bool {
	return !now.Before(k.Issued.Add(k.Expires.Sub(k.Issued) / 2))
}

// loadPSK reads the PSK file; an absent file is an error wrapping
// fs.ErrNotExist.
func loadPSK(path string) (*agentPSK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPSKFile+1))
	if err != nil {
		return nil, fmt.Errorf("nac: psk file: %w", err)
	}
	if len(b) > maxPSKFile {
		return nil, fmt.Errorf("nac: psk file %s: larger than %d bytes", path, maxPSKFile)
	}
	k := new(agentPSK)
	if err := json.Unmarshal(b, k); err != nil {
		return nil, fmt.Errorf("nac: psk file %s: %w", path, err)
	}
	return k, nil
}

// storePSK writes the PSK file atomically, mode 0600: a temporary file in
// the same directory, synced, renamed over the old one.
func storePSK(path string, k *agentPSK) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("nac: psk file: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("nac: psk file: %w", err)
	}
	return nil
}

// smEnrollment is one assessment's PSK enrollment: whether the collectors
// ask for a PSK, and the PSK they received, stored at once.
type smEnrollment struct {
	path string
	want bool
	log  *slog.Logger

	mu  sync.Mutex
	got *agentPSK
	err error
}

// wantFunc is the collectors' hook that says whether to ask for a PSK; nil
// without an enrollment.
func (e *smEnrollment) wantFunc() func() bool {
	if e == nil {
		return nil
	}
	return func() bool { return e.want }
}

// receiveFunc is the collectors' hook that hands over a granted PSK; nil
// without an enrollment.
func (e *smEnrollment) receiveFunc() func(identity string, key []byte, expires time.Time) {
	if e == nil {
		return nil
	}
	return e.receive
}

// receive stores a granted PSK in the PSK file. The key is never logged.
func (e *smEnrollment) receive(identity string, key []byte, expires time.Time) {
	k := &agentPSK{Identity: identity, Key: bytes.Clone(key), Issued: time.Now().UTC().Truncate(time.Second), Expires: expires.UTC()}
	e.mu.Lock()
	defer e.mu.Unlock()
	// The PDP hands out a PSK younger than half its lifetime again; keep
	// when it first came, so that renewal is asked for on time.
	if old, err := loadPSK(e.path); err == nil && old.Identity == identity && !old.Issued.IsZero() && old.Issued.Before(k.Issued) {
		k.Issued = old.Issued
	}
	if !k.usable(time.Now()) {
		e.err = errors.New("nac: the PDP granted an unusable PSK")
		e.log.Warn("unusable PSK granted", "identity", identity, "expires", expires)
		return
	}
	if err := storePSK(e.path, k); err != nil {
		e.err = err
		e.log.Error("storing the PSK failed", "err", err)
		return
	}
	e.got = k
	e.log.Info("enrolled for the SM channel", "identity", identity, "expires", k.Expires)
}

// received is the PSK granted in the assessment, nil when none was.
func (e *smEnrollment) received() *agentPSK {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}

// smRefused reports whether a failed SM-DTLS handshake means the PDP does
// not accept the PSK (unknown, revoked, expired, or a different key).
func smRefused(err error) bool {
	return errors.Is(err, smdtls.ErrUnknownIdentity) || errors.Is(err, smdtls.ErrAuthFailed)
}

// runAgentSM is RunAgent with the SM channel: over SM-DTLS while the PSK
// file holds a valid PSK; a PSK the PDP refuses is deleted. Otherwise, or
// when SM-DTLS fails, over PT-TLS, where the collectors ask for a PSK when
// sm.enroll is on; a PSK received there is used at once for a second
// assessment over SM-DTLS, whose outcome is the one returned (a group that
// requires the SM channel isolates every PT-TLS assessment).
func runAgentSM(ctx context.Context, cfg *AgentConfig, log *slog.Logger) (*imc.Outcome, error) {
	sm := cfg.SM
	log = log.With("channel", "sm-dtls")
	now := time.Now()
	psk, err := loadPSK(sm.PSKFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		psk = nil
	case err != nil:
		log.Warn("PSK file unusable; deleting it", "err", err)
		os.Remove(sm.PSKFile)
		psk = nil
	case !psk.usable(now):
		log.Info("PSK expired; deleting it", "identity", psk.Identity, "expires", psk.Expires)
		os.Remove(sm.PSKFile)
		psk = nil
	}
	if psk != nil {
		en := &smEnrollment{path: sm.PSKFile, want: sm.enroll() && psk.renewDue(now), log: log}
		o, err := assessSM(ctx, cfg, log, psk, en)
		if err == nil {
			return o, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if smRefused(err) {
			log.Warn("the PDP refused the PSK; deleting it", "identity", psk.Identity, "err", err)
			os.Remove(sm.PSKFile)
			psk = nil
		} else {
			log.Warn("SM channel failed; falling back to PT-TLS", "err", err)
		}
	}
	var en *smEnrollment
	if sm.enroll() {
		en = &smEnrollment{path: sm.PSKFile, want: psk == nil || psk.renewDue(now), log: log}
	}
	o, err := assessPTTLS(ctx, cfg, log, en)
	if err != nil {
		return nil, err
	}
	if en == nil || en.received() == nil {
		return o, nil
	}
	o2, err := assessSM(ctx, cfg, log, en.received(), nil)
	if err != nil {
		log.Warn("SM channel failed right after enrollment; keeping the PT-TLS outcome", "err", err)
		return o, nil
	}
	return o2, nil
}

// assessSM runs one assessment over SM-DTLS with psk; en, if not nil,
// lets the collectors rotate the PSK.
func assessSM(ctx context.Context, cfg *AgentConfig, log *slog.Logger, psk *agentPSK, en *smEnrollment) (*imc.Outcome, error) {
	sm := cfg.SM
	raddr, err := net.ResolveUDPAddr("udp", sm.Address)
	if err != nil {
		return nil, fmt.Errorf("nac: sm address: %w", err)
	}
	// Leave time for PT-TLS when nothing answers on the SM channel.
	hto := smdtls.DefaultHandshakeTimeout
	if dl, ok := ctx.Deadline(); ok {
		hto = min(hto, time.Until(dl)/3)
	}
	dctx, cancel := context.WithTimeout(ctx, hto)
	nc, err := smdtls.Dial(dctx, "udp", raddr, &smdtls.Config{
		Identity:         []byte(psk.Identity),
		PSK:              psk.Key,
		MTU:              sm.MTU,
		HandshakeTimeout: hto,
		Logger:           log,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("nac: sm %s: %w", sm.Address, err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	binding, err := nc.ExportKeyingMaterial(patnc.ChannelBindingLabel, nil, patnc.ChannelBindingLen)
	if err != nil {
		return nil, fmt.Errorf("nac: channel binding: %w", err)
	}
	conn, err := pttls.Client(ctx, nc, &pttls.ClientConfig{})
	if err != nil {
		return nil, fmt.Errorf("nac: sm %s: %w", sm.Address, err)
	}
	defer conn.Close()
	log.Debug("assessing over SM-DTLS", "identity", psk.Identity, "pdp", sm.Address)
	return assessOver(ctx, cfg, log, conn, binding, en)
}

// smKeyCollector is the SM2 key-pair collector of an endpoint without a
// TPM (imc/smkey).
func smKeyCollector(sm *AgentSMConfig, log *slog.Logger, en *smEnrollment) (imc.Collector, error) {
	c, err := smkeyimc.New(smkeyimc.Config{KeyFile: sm.SM2Key, Enroll: en.wantFunc(), OnPSK: en.receiveFunc()}, log)
	if err != nil {
		return nil, fmt.Errorf("nac: sm.sm2_key: %w", err)
	}
	return c, nil
}
