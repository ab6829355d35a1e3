package nac

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"trustnac/imc"
	osimc "trustnac/imc/os"
	tpmimc "trustnac/imc/tpm"
	"trustnac/pdp"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
	"trustnac/transport/pttls"
)

// Exit codes of `nac agent`: one per outcome, so scripts can act on it.
const (
	ExitAdmit     = 0
	ExitFailure   = 1 // no decision: the PDP was unreachable or the handshake failed
	ExitRemediate = 2
	ExitIsolate   = 3
	ExitAssess    = 4
	ExitDeny      = 5
)

// ExitCode is the exit code of `nac agent` for an outcome's role.
func ExitCode(role string) int {
	switch role {
	case "admit":
		return ExitAdmit
	case "remediate":
		return ExitRemediate
	case "isolate":
		return ExitIsolate
	case "assess":
		return ExitAssess
	}
	return ExitDeny
}

// agentTLSConfig is how the agent recognises the PDP: by a CA, by a pin of
// the PDP's certificate, or both. Without either it refuses to connect.
func agentTLSConfig(c AgentPDPConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: c.ServerName, CurvePreferences: agentCurves(c.KeyExchange)}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("nac: pdp ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nac: pdp ca %s: no certificate in it", c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Pin != "" {
		want := strings.ToLower(c.Pin)
		if c.CA == "" {
			// The pin is the whole verification: the chain is not checked
			// against any CA, only the exact certificate is accepted.
			tc.InsecureSkipVerify = true
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("nac: pdp sent no certificate")
			}
			got := pdp.Fingerprint(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return fmt.Errorf("nac: pdp certificate %s does not match the pin", got)
			}
			return nil
		}
	} else if c.CA == "" {
		return nil, errors.New("nac: pdp: set ca or pin")
	}
	return tc, nil
}

// agentCurves are the groups the agent's TLS offers. A client sends key
// shares for the first it allows in Go's order (with X25519MLKEM768, also
// for X25519). Classic leaves X25519 out so that the share is P-256, which
// every TLS 1.3 server implements (RFC 8446 §9.1) and which Go computes in
// two thirds of the time of X25519 (assembly on amd64 and arm64).
func agentCurves(kx string) []tls.CurveID {
	if kx == KeyExchangeClassic {
		return []tls.CurveID{tls.CurveP256, tls.CurveP384}
	}
	return tlsCurves(kx)
}

// agentCollectors builds the collectors the configuration enables. The
// returned function releases what they hold (the TPM connection).
// maxLogChunk bounds the pieces of measurement logs the TPM collector sends
// (0: its default, for PT-TLS).
func agentCollectors(cfg *AgentConfig, log *slog.Logger, maxLogChunk int) ([]imc.Collector, func(), error) {
	return agentCollectorsFor(cfg, log, maxLogChunk, nil)
}

// agentCollectorsFor is agentCollectors with en, if not nil, letting the
// collectors enroll for an SM-channel PSK.
func agentCollectorsFor(cfg *AgentConfig, log *slog.Logger, maxLogChunk int, en *smEnrollment) ([]imc.Collector, func(), error) {
	var cols []imc.Collector
	if o := cfg.Collectors.OS; o != nil && !o.Disabled {
		cols = append(cols, osimc.New(osimc.Config{Root: o.Root}, log.With("imc", "os")))
	}
	t := cfg.Collectors.TPM
	if t == nil {
		if sm := cfg.SM; sm != nil && sm.SM2Key != "" {
			col, err := smKeyCollector(sm, log, en)
			if err != nil {
				return nil, nil, err
			}
			cols = append(cols, col)
		}
		return cols, func() {}, nil
	}
	tpm, err := tpmimc.OpenTPM(t.Device)
	if err != nil {
		return nil, nil, fmt.Errorf("nac: tpm %s: %w", t.Device, err)
	}
	col, err := tpmimc.New(tpm, tpmimc.Config{
		StateDir: t.StateDir,
		AKAlg:    t.AKAlg,
		EKAlg:    t.EKAlg,
		EventLog: t.EventLog,
		IMALog:   t.IMALog,
		// In EAP a PB-TNC batch holds at most 65,522 bytes.
		MaxLogChunk: maxLogChunk,
		Enroll:      en.wantFunc(),
		OnPSK:       en.receiveFunc(),
	}, log)
	if err != nil {
		tpm.Close()
		return nil, nil, err
	}
	return append(cols, col), func() { tpm.Close() }, nil
}

// agentPassword is the configured password, from password_file if set.
func agentPassword(cfg *AgentConfig) (string, error) {
	if cfg.PasswordFile == "" {
		return cfg.Password, nil
	}
	b, err := os.ReadFile(cfg.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("nac: password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// RunAgent runs one assessment against the PDP and returns the outcome.
// With an sm section it prefers the SM channel (agent_sm.go): SM-DTLS
// while the agent holds a valid PSK, PT-TLS otherwise (enrolling for a
// PSK there when told to). Without it, PT-TLS over TLS 1.3.
func RunAgent(ctx context.Context, cfg *AgentConfig, log *slog.Logger) (*imc.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D())
	defer cancel()
	if cfg.SM != nil {
		return runAgentSM(ctx, cfg, log)
	}
	return assessPTTLS(ctx, cfg, log, nil)
}

// assessPTTLS runs one assessment over PT-TLS (TLS 1.3); en, if not nil,
// lets the collectors enroll for an SM-channel PSK.
func assessPTTLS(ctx context.Context, cfg *AgentConfig, log *slog.Logger, en *smEnrollment) (*imc.Outcome, error) {
	tc, err := agentTLSConfig(cfg.PDP)
	if err != nil {
		return nil, err
	}
	password, err := agentPassword(cfg)
	if err != nil {
		return nil, err
	}

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", cfg.PDP.Address)
	if err != nil {
		return nil, fmt.Errorf("nac: pdp %s: %w", cfg.PDP.Address, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	ccfg := &pttls.ClientConfig{}
	if cfg.Identity != "" {
		ccfg.SASL = []pttls.ClientMechanism{&pttls.PlainClient{Username: cfg.Identity, Password: password}}
	}
	tlsConn := tls.Client(raw, tc)
	conn, err := pttls.Client(ctx, tlsConn, ccfg)
	if err != nil {
		return nil, fmt.Errorf("nac: pdp %s: %w", cfg.PDP.Address, err)
	}
	defer conn.Close()
	cs := tlsConn.ConnectionState()
	binding, err := cs.ExportKeyingMaterial(patnc.ChannelBindingLabel, nil, patnc.ChannelBindingLen)
	if err != nil {
		return nil, fmt.Errorf("nac: channel binding: %w", err)
	}
	return assessOver(ctx, cfg, log, conn, binding, en)
}

// assessOver runs the PB-TNC handshake of one assessment over an
// established PT-TLS connection (over TLS or SM-DTLS) whose exporter value
// binding the TPM quote is bound to.
func assessOver(ctx context.Context, cfg *AgentConfig, log *slog.Logger, conn *pttls.Conn, binding []byte, en *smEnrollment) (*imc.Outcome, error) {
	cols, release, err := agentCollectorsFor(cfg, log, 0, en)
	if err != nil {
		return nil, err
	}
	defer release()
	hs := imc.NewClient(cols, log).Handshake()
	hs.ChannelBinding = binding
	client := pbtnc.NewClient(hs, pbtnc.Config{Language: cfg.Language, CloseAfterResult: true})
	out, err := client.Start(ctx)
	if err != nil {
		if out != nil {
			conn.WriteBatch(out) // the CLOSE with the PB-Error that says why
		}
		return nil, fmt.Errorf("nac: assessment: %w", err)
	}
	for {
		if out != nil {
			if err := conn.WriteBatch(out); err != nil {
				// The CLOSE after the RESULT may find the PDP gone (over
				// SM-DTLS a write waits for the peer to take it); the
				// decision is in.
				if _, decided := hs.Outcome(); !decided || client.State() != pbtnc.StateEnd {
					return nil, fmt.Errorf("nac: send batch: %w", err)
				}
			}
		}
		if client.State() == pbtnc.StateEnd {
			break
		}
		in, err := conn.ReadBatch()
		if err != nil {
			return nil, fmt.Errorf("nac: receive batch: %w", err)
		}
		out, err = client.Step(ctx, in)
		if err != nil {
			// A non-fatal PB-Error from the PDP leaves the session going.
			if errors.Is(err, pbtnc.ErrPeerError) && client.State() != pbtnc.StateEnd {
				log.Warn("the PDP reported an error", "err", err)
				continue
			}
			if out != nil {
				conn.WriteBatch(out)
			}
			return nil, fmt.Errorf("nac: assessment: %w", err)
		}
	}
	o, ok := hs.Outcome()
	if !ok {
		return nil, errors.New("nac: the PDP closed the session without a decision")
	}
	return &o, nil
}
