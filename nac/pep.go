package nac

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"github.com/spf13/cobra"

	"trustnac/pep/bridge"
	"trustnac/pep/controller"
	tradius "trustnac/transport/radius"
)

// newPEPCmd is `nac pep --config FILE`: the policy enforcement point on a Linux bridge.
func newPEPCmd(stderr io.Writer) *cobra.Command {
	var (
		configPath string
		cleanup    bool
	)
	cmd := &cobra.Command{
		Use:   "pep",
		Short: "Run the policy enforcement point on a Linux bridge (802.1X, MAB, CoA)",
		Long: `Locks the bridge's ports, authenticates endpoints by 802.1X or MAB against the PDP
over RADIUS, enforces the decisions with FDB entries and nftables role sets, and
serves CoA/Disconnect from the PDP. Runs until SIGTERM or SIGINT; kernel state
stays in force after it stops unless cleanup_on_exit (or --cleanup) is set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadPEPConfig(configPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if cleanup {
				cfg.CleanupOnExit = true
			}
			log := NewLogger(cfg.Log, stderr)
			return RunPEP(cmd.Context(), cfg, log, nil)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "/etc/trustnac/pep.yaml", "PEP configuration file")
	cmd.Flags().BoolVar(&cleanup, "cleanup", false, "remove all enforcement when stopping (overrides cleanup_on_exit)")
	return cmd
}

// PEPControllerConfig turns a PEPConfig into the controller's and the enforcer's
// configurations, reading the secret files.
func PEPControllerConfig(c *PEPConfig, log *slog.Logger) (controller.Config, bridge.Config, error) {
	secret, err := readSecret(c.RADIUS.Secret, c.RADIUS.SecretFile)
	if err != nil {
		return controller.Config{}, bridge.Config{}, err
	}
	cc := controller.Config{
		Bridge: c.Bridge, Ports: c.Ports, Exclude: c.Exclude, NASIdentifier: c.NASIdentifier,
		StateDir: c.StateDir, Auth: c.RADIUS.Auth, Secret: secret,
		Timeout: c.RADIUS.Timeout.D(), Retries: *c.RADIUS.Retries, InterimInterval: c.RADIUS.InterimInterval.D(),
		MAB: c.MAB.Enabled, MABDelay: c.MAB.Delay.D(), MABMaxPerPort: c.MAB.MaxPerPort,
		TxPeriod: c.Dot1X.TxPeriod.D(), QuietPeriod: c.Dot1X.QuietPeriod.D(), MaxReq: c.Dot1X.MaxReq,
		Reauth: *c.Dot1X.Reauth, VLANs: c.VLANs, CleanupOnExit: c.CleanupOnExit, Logger: log,
	}
	if cc.Retries == 0 {
		cc.Retries = -1 // tradius: 0 is its default, negative is none
	}
	if c.NASIP != "" {
		cc.NASIP, _ = netip.ParseAddr(c.NASIP)
	}
	if c.RADIUS.Acct != "off" {
		cc.Acct = c.RADIUS.Acct
	}
	if c.DAS.Listen != "off" {
		cc.DASListen = c.DAS.Listen
		for _, cl := range c.DAS.Clients {
			s, err := readSecret(cl.Secret, cl.SecretFile)
			if err != nil {
				return controller.Config{}, bridge.Config{}, fmt.Errorf("nac: das client %s: %w", cl.Name, err)
			}
			n, _ := parseNetwork(cl.Network)
			cc.DASClients = append(cc.DASClients, tradius.ClientConfig{Name: cl.Name, Network: n, Secret: s})
		}
	}
	bc := bridge.Config{Bridge: c.Bridge, Table: c.Table, VLANs: c.VLANs, MAB: c.MAB.Enabled, Logger: log}
	for _, r := range c.Restricted {
		p, _ := parseNetwork(r)
		bc.Restricted = append(bc.Restricted, p)
	}
	return cc, bc, nil
}

// RunPEP runs the PEP until ctx ends: the bridge enforcer first (its table installed), then
// the controller (ports locked, reconciled, served). ready, when not nil, is called with the
// controller once it is serving.
func RunPEP(ctx context.Context, c *PEPConfig, log *slog.Logger, ready func(*controller.Controller)) error {
	cc, bc, err := PEPControllerConfig(c, log)
	if err != nil {
		return err
	}
	enf, err := bridge.New(bc)
	if err != nil {
		return fmt.Errorf("nac: pep: %w", err)
	}
	defer enf.Close()
	ctl, err := controller.New(cc, enf)
	if err != nil {
		return fmt.Errorf("nac: pep: %w", err)
	}
	if ready != nil {
		go func() {
			select {
			case <-ctl.Ready():
				ready(ctl)
			case <-ctx.Done():
			}
		}()
	}
	if err := ctl.Run(ctx); err != nil {
		return fmt.Errorf("nac: pep: %w", err)
	}
	return nil
}
