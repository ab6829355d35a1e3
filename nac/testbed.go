package nac

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	tblab "trustnac/testbed/lab"
)

// newTestbedCmd is `nac testbed`: the network-namespace lab (testbed/lab).
func newTestbedCmd(stdout, stderr io.Writer) *cobra.Command {
	var cfg tblab.Config
	cmd := &cobra.Command{
		Use:   "testbed",
		Short: "Build the network-namespace lab: PDP, PEP on a bridge, endpoints with swtpm (needs root)",
		Long: `The lab of testbed/lab: namespaces tnac-hv (bridge br-nac, nac pep), tnac-pdp (nac pdp),
tnac-rem (remediation server), tnac-srv (the rest of the network) and one namespace per
endpoint on a managed bridge port, each with its own swtpm and nac agent.

  nac testbed demo    build it, prove every outcome with traffic, print the table, remove it
  nac testbed up      build it and leave it running (state and logs in --dir)
  nac testbed status  print what the kernel enforces now and what the PDP decided
  nac testbed down    remove everything a lab made, also after a crash (idempotent)
  nac testbed bench   time to the first forwarded packet: nac pep + nac pdp with posture
                      against hostapd -D wired + FreeRADIUS (plain 802.1X)`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.Dir, "dir", tblab.DefaultDir, "state, configuration, pid files and logs")
	pf.StringVar(&cfg.Bin, "bin", "", "the nac binary the lab runs (default: this one)")
	pf.StringVar(&cfg.Top, "top", "", "repository root with policies/examples and testbed/fixtures (default: found from the binary or the working directory)")
	prepare := func() (*tblab.Lab, error) {
		c := cfg
		c.Out = stdout
		if c.Bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, err
			}
			c.Bin = exe
		}
		if c.Top == "" {
			c.Top = findTop(c.Bin)
			if c.Top == "" {
				return nil, errors.New("nac testbed: cannot find the repository (policies/examples/lab.yaml); pass --top")
			}
		}
		return tblab.New(c)
	}

	var keep bool
	demo := &cobra.Command{
		Use:   "demo",
		Short: "Build the lab, run the scenario, print the table, remove the lab; exit 0 when every outcome was as expected",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := prepare()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			if !keep {
				defer tblab.Down(context.Background(), l.Dir, stdout)
			}
			if err := l.Up(ctx); err != nil {
				return &exitError{code: 1, err: err}
			}
			rep := l.Run(ctx, func(c *tblab.Check) {
				res := "PASS"
				if !c.Pass {
					res = "FAIL"
				}
				fmt.Fprintf(stdout, "testbed: %s %-8s %-24s role %s (want %s), reach %s\n", res, c.Endpoint, c.Phase, c.Role, c.Expect, c.Reach)
			})
			fmt.Fprintln(stdout)
			rep.Table(stdout)
			if !rep.Passed() {
				return &exitError{code: 1, err: fmt.Errorf("testbed: some outcomes were not as expected (logs in %s/log)", l.Dir)}
			}
			fmt.Fprintln(stdout, "\ntestbed: every outcome as expected")
			return nil
		},
	}
	demo.Flags().BoolVar(&keep, "keep", false, "leave the lab running afterwards (remove it with nac testbed down)")

	up := &cobra.Command{
		Use:   "up",
		Short: "Build the lab and leave it running (every endpoint, the VM too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := prepare()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			if err := l.Up(ctx); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%w (nac testbed down removes what was made)", err)}
			}
			for _, e := range l.Eps {
				if e.Late {
					if err := l.AddEndpoint(ctx, e); err != nil {
						return &exitError{code: 1, err: err}
					}
				}
			}
			// Devices without a supplicant are seen when they send
			// something: knock, and wait for their MAB decisions.
			l.Knock(ctx)
			fmt.Fprintln(stdout)
			l.Status(ctx, stdout)
			fmt.Fprintf(stdout, "\ntestbed: up. Try:\n  ip netns exec tnac-healthy curl http://%s/\n  ip netns exec tnac-mab %s agent --config %s/ep/mab/agent.yaml   # PT-TLS, then the PDP's CoA admits it\n  nac testbed status\n  nac testbed down\n",
				tblab.AddrServer, l.Bin, l.Dir)
			return nil
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process and file a lab made (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tblab.Down(cmd.Context(), cfg.Dir, stdout); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintln(stdout, "testbed: down")
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Print each endpoint's enforced role, the PDP's decision and what it reaches now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := prepare()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return l.Status(cmd.Context(), stdout)
		},
	}
	var bench tblab.BenchConfig
	benchCmd := &cobra.Command{
		Use:   "bench",
		Short: "Link up → first forwarded packet: nac pep + nac pdp (posture) against hostapd + FreeRADIUS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := prepare()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 20*time.Minute)
			defer cancel()
			if err := l.Bench(ctx, bench, stdout); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	benchCmd.Flags().IntVarP(&bench.N, "count", "n", 10, "repetitions of each")
	benchCmd.Flags().StringVar(&bench.Only, "only", "", "run only one side: nac or hostapd")

	var listen, text string
	httpd := &cobra.Command{
		Use:    "httpd",
		Short:  "A small HTTP server for the lab's servers",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(w, "%s\nyou are %s\n", text, r.RemoteAddr)
				}),
				ReadHeaderTimeout: 5 * time.Second,
			}
			fmt.Fprintf(stderr, "httpd: listening on %s\n", ln.Addr())
			go func() { <-cmd.Context().Done(); srv.Close() }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	httpd.Flags().StringVar(&listen, "listen", ":80", "TCP address")
	httpd.Flags().StringVar(&text, "text", "trustnac lab", "what every page says")

	cmd.AddCommand(demo, up, down, status, benchCmd, httpd)
	return cmd
}

// findTop finds the repository root: above the binary (bin/nac) or the
// working directory, the first directory holding policies/examples/lab.yaml.
func findTop(bin string) string {
	var starts []string
	if exe, err := filepath.EvalSymlinks(bin); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, d := range starts {
		for i := 0; i < 6; i++ {
			if _, err := os.Stat(filepath.Join(d, "policies", "examples", "lab.yaml")); err == nil {
				return d
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return ""
}
