package nac

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"trustnac/imv"
	osimv "trustnac/imv/os"
	tpmimv "trustnac/imv/tpm"
	"trustnac/imv/tpm/ima"
	"trustnac/pdp"
	"trustnac/transport/pttls"
	tradius "trustnac/transport/radius"
	"trustnac/transport/smdtls"
)

// PDP is the `nac pdp` role: the store, the policy, the TNCS with its
// verifiers, the PT-TLS listener and the admin API, started in that order
// and stopped in reverse.
type PDP struct {
	cfg *PDPConfig
	log *slog.Logger

	// Fingerprint is the pin of the PT-TLS certificate, set by Start.
	Fingerprint string

	audit                      *slog.Logger
	auditFile                  *os.File
	store                      *pdp.BoltStore
	policy                     *pdp.PolicySource
	tncs                       *pdp.TNCS
	ptServer                   *pttls.Server
	ptLn                       net.Listener
	apiServer                  *http.Server
	apiLn                      net.Listener
	radius                     *pdp.RADIUS
	radiusAuthLn, radiusAcctLn net.PacketConn
	radiusServers              map[string]*tradius.Server
	done                       chan struct{} // closed when the listeners' goroutines end
	stops                      []func(context.Context) error

	// The SM channel (pdp_sm.go): the PSK store (nil when the channel is
	// off), the SM-DTLS listener and its PT-TLS server, and the clock of
	// PSK checks (nil for time.Now; tests move it).
	psks     *pdp.PSKStore
	smServer *pttls.Server
	smLn     *smdtls.Listener
	clock    func() time.Time
}

// NewPDP prepares a PDP; Start brings it up.
func NewPDP(cfg *PDPConfig, log *slog.Logger) *PDP {
	return &PDP{cfg: cfg, log: log}
}

// PTTLSAddr is the address the PT-TLS listener is bound to.
func (p *PDP) PTTLSAddr() net.Addr { return p.ptLn.Addr() }

// APIAddr is the address of the admin API, nil when it is off.
func (p *PDP) APIAddr() net.Addr {
	if p.apiLn == nil {
		return nil
	}
	return p.apiLn.Addr()
}

// Policy is the policy source in force.
func (p *PDP) Policy() *pdp.PolicySource { return p.policy }

// Store is the PDP's store.
func (p *PDP) Store() pdp.Store { return p.store }

// Start brings the PDP up. It returns once the listeners accept; when a
// step fails, what started is stopped again.
func (p *PDP) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			p.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(p.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("nac: state dir: %w", err)
	}

	p.audit = p.log
	if p.cfg.Log.Audit != "" {
		f, err := os.OpenFile(p.cfg.Log.Audit, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("nac: audit log: %w", err)
		}
		p.auditFile = f
		p.audit = slog.New(slog.NewJSONHandler(f, nil))
		p.onStop(func(context.Context) error { return f.Close() })
	}

	store, err := pdp.OpenBoltStore(filepath.Join(p.cfg.StateDir, "pdp.db"), false, 2*time.Second)
	if err != nil {
		return err
	}
	p.store = store
	p.onStop(func(context.Context) error { return store.Close() })

	p.policy, err = pdp.LoadPolicySource(p.cfg.Policy, p.log)
	if err != nil {
		return err
	}

	if !p.cfg.SM.Off() {
		p.psks = store.PSKs()
		p.psks.Now = p.clock
	}
	tpmv, err := p.tpmVerifier()
	if err != nil {
		return err
	}
	verifiers := []imv.Verifier{osimv.New(osimv.Config{}, p.log.With("imv", "os")), tpmv}
	if p.psks != nil {
		smk, err := p.smKeyVerifier()
		if err != nil {
			return err
		}
		verifiers = append(verifiers, smk)
	}
	p.tncs = pdp.NewTNCS(pdp.TNCSConfig{
		Verifiers:    verifiers,
		Policy:       p.policy,
		Store:        store,
		Log:          p.log,
		Audit:        p.audit,
		MaxBatchSize: p.cfg.PBTNC.MaxBatchSize,
		MaxRounds:    p.cfg.PBTNC.MaxRounds,
		OnDecision: func(d *pdp.Decision) {
			if p.radius != nil {
				p.radius.OnDecision(d)
			}
		},
		EndpointOfPSK: p.endpointOfPSK,
	})

	if err := p.startRADIUS(); err != nil {
		return err
	}
	if err := p.startPTTLS(); err != nil {
		return err
	}
	if err := p.startSM(); err != nil {
		return err
	}
	if err := p.startAPI(); err != nil {
		return err
	}
	api := "off"
	if p.apiLn != nil {
		api = p.apiLn.Addr().String()
	}
	radiusAddr := "off"
	if a := p.RADIUSAuthAddr(); a != nil {
		radiusAddr = a.String()
	}
	smAddr := "off"
	if a := p.SMAddr(); a != nil {
		smAddr = a.String()
	}
	p.log.Info("pdp ready", "pttls", p.ptLn.Addr().String(), "sm", smAddr, "radius", radiusAddr, "api", api,
		"policy", p.cfg.Policy, "fingerprint", p.Fingerprint)
	return nil
}

// tpmVerifier builds the TPM attestation verifier from the configuration,
// with the store for enrolled keys and the policy in force for enrollment
// modes and reference values.
func (p *PDP) tpmVerifier() (*tpmimv.Verifier, error) {
	c := p.cfg.TPM
	roots, err := pdp.LoadCertPool(c.EKRoots)
	if err != nil {
		return nil, err
	}
	var allow *ima.Allowlist
	if c.IMAAllowlist != "" {
		if allow, err = ima.LoadAllowlist(c.IMAAllowlist); err != nil {
			return nil, err
		}
	}
	var banks []uint16
	for _, b := range c.Banks {
		banks = append(banks, pdp.BankAlgs[b])
	}
	tp := pdp.TPMPolicy{Source: p.policy}
	var issuer tpmimv.PSKIssuer
	if p.psks != nil {
		issuer = pdp.PSKIssuer{Store: p.psks, Kind: pdp.PSKKindTPM, Lifetime: p.cfg.SM.PSKLifetime.D()}
	}
	return tpmimv.New(tpmimv.Config{
		PSKIssuer:    issuer,
		AKs:          p.store,
		EKRoots:      roots,
		Enrollment:   tp.Enrollment,
		References:   tp.References,
		PCRs:         c.PCRs,
		Banks:        banks,
		IMAAllowlist: allow,
	}, p.log.With("imv", "tpm")), nil
}

func (p *PDP) onStop(f func(context.Context) error) { p.stops = append(p.stops, f) }

func (p *PDP) startPTTLS() error {
	c := p.cfg.PTTLS
	cert, created, err := pdp.LoadOrCreateCert(c.Cert, c.Key, c.Names)
	if err != nil {
		return err
	}
	p.Fingerprint = pdp.Fingerprint(cert.Certificate[0])
	if created {
		p.log.Info("created a self-signed PT-TLS certificate; pin it in the agents",
			"cert", c.Cert, "fingerprint", p.Fingerprint)
	}
	sc := pttls.ServerConfig{
		MaxMessageSize:   c.MaxMessageSize,
		HandshakeTimeout: c.HandshakeTimeout.D(),
		IdleTimeout:      c.IdleTimeout.D(),
		RequireSASL:      c.RequireSASL,
	}
	if c.UsersFile != "" {
		users, err := pdp.LoadUsers(c.UsersFile)
		if err != nil {
			return err
		}
		sc.SASL = []pttls.ServerMechanism{&pttls.PlainServer{Verify: plainVerifier(users)}}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("nac: pt-tls listen: %w", err)
	}
	p.ptLn = tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
	})
	p.ptServer = &pttls.Server{
		Config:   sc,
		Handler:  p.tncs,
		Logger:   p.log.With("listener", "pt-tls"),
		MaxConns: c.MaxConns,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.ptServer.Serve(p.ptLn); err != nil && !errors.Is(err, pttls.ErrServerClosed) {
			p.log.Error("pt-tls server", "err", err)
		}
	}()
	p.onStop(func(ctx context.Context) error {
		err := p.ptServer.Shutdown(ctx)
		<-done
		return err
	})
	return nil
}

// plainVerifier checks SASL PLAIN credentials against the users file. An
// authorization identity other than the user's own is refused.
func plainVerifier(users *pdp.Users) func(ctx context.Context, authzid, user, pass string) (string, error) {
	return func(ctx context.Context, authzid, user, pass string) (string, error) {
		if authzid != "" && authzid != user {
			return "", errors.New("authorization identity differs from the user")
		}
		if !users.Verify(user, pass) {
			return "", errors.New("bad user or password")
		}
		return user, nil
	}
}

func (p *PDP) startAPI() error {
	if p.cfg.API.Listen == "off" {
		return nil
	}
	var ln net.Listener
	var err error
	if path, ok := strings.CutPrefix(p.cfg.API.Listen, "unix:"); ok {
		os.Remove(path)
		ln, err = net.Listen("unix", path)
		if err == nil {
			err = os.Chmod(path, 0o660)
		}
	} else {
		ln, err = net.Listen("tcp", p.cfg.API.Listen)
	}
	if err != nil {
		return fmt.Errorf("nac: api listen: %w", err)
	}
	p.apiLn = ln
	api := &pdp.API{Store: p.store, AKs: p.store, RADIUS: p.radius, Stats: p.statsWithSM, Log: p.log}
	if p.psks != nil {
		api.PSKs = p.psks
	}
	p.apiServer = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext:       pdp.PeerCredContext,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.apiServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("api server", "err", err)
		}
	}()
	p.onStop(func(ctx context.Context) error {
		err := p.apiServer.Shutdown(ctx)
		<-done
		return err
	})
	return nil
}

// Stop stops what Start started, in reverse order.
func (p *PDP) Stop(ctx context.Context) error {
	var errs []error
	for i := len(p.stops) - 1; i >= 0; i-- {
		if err := p.stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.stops = nil
	return errors.Join(errs...)
}

// RunPDP runs a PDP until ctx ends. Each value on hup reloads the policy.
func RunPDP(ctx context.Context, cfg *PDPConfig, log *slog.Logger, hup <-chan os.Signal) error {
	p := NewPDP(cfg, log)
	if err := p.Start(ctx); err != nil {
		return err
	}
	p.policy.Watch(ctx, cfg.PolicyCheckInterval.D(), hup)
	log.Info("pdp stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Stop(sctx)
}
