package nac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"trustnac/pdp"
	"trustnac/policies"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// Main runs the nac command line with args and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "nac:", strings.TrimPrefix(ee.err.Error(), "nac: "))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "nac:", strings.TrimPrefix(err.Error(), "nac: "))
	return 1
}

// printJSON writes v to w as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "nac",
		Short:         "trustnac: TCG TNC network access control with TPM attestation",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newPDPCmd(stderr),
		newAgentCmd(stdout, stderr),
		newPolicyCmd(stdout),
		newEndpointsCmd(stdout),
		newPasswdCmd(stdin, stdout),
		newAttestCmd(stdout, stderr),
		newPEPCmd(stderr),
		newTestbedCmd(stdout, stderr),
	)
	return root
}

func newPDPCmd(stderr io.Writer) *cobra.Command {
	var configPath, cpuProfile, memProfile string
	cmd := &cobra.Command{
		Use:   "pdp",
		Short: "Run the policy decision point (TNC server, PT-TLS listener)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadPDPConfig(configPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := NewLogger(cfg.Log, stderr)
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				defer stop()
			}
			if memProfile != "" {
				defer writeHeapProfile(memProfile, log)
			}
			tunePDPGC(os.Getenv)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return RunPDP(cmd.Context(), cfg, log, hup)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "/etc/trustnac/pdp.yaml", "PDP configuration file")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to `file` (go tool pprof)")
	cmd.Flags().StringVar(&memProfile, "memprofile", "", "write a heap profile, with everything allocated during the run, to `file` at exit (go tool pprof -sample_index=alloc_space)")
	return cmd
}

func newAgentCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		configPath string
		asJSON     bool
		over       AgentConfig
		osRoot     string
		iface      string
		statusFile string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Assess this endpoint with the PDP over PT-TLS, or authenticate its link with 802.1X",
		Long: `Runs the collectors, connects to the PDP over PT-TLS, and prints the decision,
the reasons and any remediation instructions. Exit codes: 0 admit, 2 remediate,
3 isolate, 4 assess, 5 deny, 1 no decision.

With a dot1x section in the configuration (or --interface), the agent stays
running as the 802.1X supplicant of that interface instead: it authenticates
whenever the link comes up (EAP-TTLS with the TNC handshake inside), falls back
to PT-TLS where no authenticator answers, re-authenticates on SIGHUP, reports
each outcome in its log and status file, and exits 0 on SIGTERM or SIGINT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *AgentConfig
			if configPath != "" {
				c, err := LoadAgentConfig(configPath)
				if err != nil {
					return &exitError{code: ExitFailure, err: err}
				}
				cfg = c
			} else {
				cfg = new(AgentConfig)
			}
			f := cmd.Flags()
			if f.Changed("pdp") {
				cfg.PDP.Address = over.PDP.Address
				cfg.PDP.ServerName = ""
			}
			if f.Changed("pin") {
				cfg.PDP.Pin = over.PDP.Pin
			}
			if f.Changed("ca") {
				cfg.PDP.CA = over.PDP.CA
			}
			if f.Changed("identity") {
				cfg.Identity = over.Identity
			}
			if f.Changed("password-file") {
				cfg.PasswordFile, cfg.Password = over.PasswordFile, ""
			}
			if f.Changed("interface") {
				if cfg.Dot1X == nil {
					cfg.Dot1X = new(AgentDot1XConfig)
				}
				cfg.Dot1X.Interface = iface
			}
			if f.Changed("status-file") && cfg.Dot1X != nil {
				cfg.Dot1X.StatusFile = statusFile
			}
			cfg.SetDefaults()
			if f.Changed("os-root") {
				cfg.Collectors.OS.Root = osRoot
			}
			if err := cfg.Validate(); err != nil {
				return &exitError{code: ExitFailure, err: err}
			}
			log := NewLogger(cfg.Log, stderr)
			if cfg.Dot1X != nil {
				hup := make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				defer signal.Stop(hup)
				if err := RunAgentLink(cmd.Context(), cfg, log, hup); err != nil {
					return &exitError{code: ExitFailure, err: err}
				}
				return nil
			}
			o, err := RunAgent(cmd.Context(), cfg, log)
			if err != nil {
				return &exitError{code: ExitFailure, err: err}
			}
			if asJSON {
				printJSON(stdout, o)
			} else {
				fmt.Fprintf(stdout, "decision: %s\n", o.Role)
				for _, r := range o.Reasons {
					fmt.Fprintf(stdout, "reason: %s\n", r)
				}
				for _, r := range o.Remediation {
					if r.Text != "" {
						fmt.Fprintf(stdout, "remediation: %s\n", r.Text)
					}
					if r.URI != "" {
						fmt.Fprintf(stdout, "remediation: %s\n", r.URI)
					}
				}
			}
			if code := ExitCode(o.Role); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "agent configuration file")
	f.StringVar(&over.PDP.Address, "pdp", "", "PDP PT-TLS address host:port")
	f.StringVar(&over.PDP.Pin, "pin", "", "PDP certificate pin, sha256:<hex>")
	f.StringVar(&over.PDP.CA, "ca", "", "CA file for the PDP certificate")
	f.StringVar(&over.Identity, "identity", "", "identity for SASL PLAIN")
	f.StringVar(&over.PasswordFile, "password-file", "", "file holding the SASL PLAIN password")
	f.StringVar(&osRoot, "os-root", "", "root of the tree the OS collector reads")
	f.BoolVar(&asJSON, "json", false, "print the outcome as JSON")
	f.StringVar(&iface, "interface", "", "run as the 802.1X supplicant of this interface (the dot1x mode)")
	f.StringVar(&statusFile, "status-file", "", "in the dot1x mode: write the current outcome here as JSON")
	return cmd
}

func newPolicyCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check and explain policy files"}
	check := &cobra.Command{
		Use:   "check FILE...",
		Short: "Load policy files strictly and report errors and warnings",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			bad := 0
			for _, f := range files {
				p, err := policies.LoadFile(f)
				if err != nil {
					bad++
					fmt.Fprintln(stdout, err)
					continue
				}
				for _, w := range policies.Lint(p) {
					fmt.Fprintf(stdout, "%s: warning: %s\n", f, w)
				}
				fmt.Fprintf(stdout, "%s: ok (%d groups, %d rules)\n", f, len(p.Groups), len(p.Rules))
			}
			if bad > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d policy files invalid", bad, len(files))}
			}
			return nil
		},
	}
	var factsPath string
	explain := &cobra.Command{
		Use:   "explain FILE --facts FACTS.json",
		Short: "Show which rule a policy picks for the given facts, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policies.LoadFile(args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ep, facts, err := policies.LoadFacts(factsPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			d := p.Decide(ep, facts)
			d.Explain(stdout)
			return nil
		},
	}
	explain.Flags().StringVar(&factsPath, "facts", "", "JSON file of facts: {\"endpoint\":{...},\"os\":{...}}")
	explain.MarkFlagRequired("facts")
	cmd.AddCommand(check, explain)
	return cmd
}

func newPasswdCmd(stdin io.Reader, stdout io.Writer) *cobra.Command {
	var iterations int
	var nt bool
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Hash a password read from standard input for a users file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := io.ReadAll(io.LimitReader(stdin, 4096))
			if err != nil {
				return err
			}
			pw := strings.TrimRight(string(b), "\r\n")
			if pw == "" {
				return errors.New("empty password")
			}
			if nt {
				fmt.Fprintln(stdout, pdp.HashNT(pw))
				return nil
			}
			h, err := pdp.HashPassword(pw, iterations)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, h)
			return nil
		},
	}
	cmd.Flags().IntVar(&iterations, "iterations", pdp.DefaultIterations, "PBKDF2-SHA256 iterations")
	cmd.Flags().BoolVar(&nt, "nthash", false, "print an NT hash (needed for EAP-MSCHAPv2; unsalted MD4, weaker)")
	return cmd
}

// pdpGCPercent is the PDP's GOGC. Its live heap is small (about 12 MB in
// the posture benchmark) while every TLS handshake allocates some 100 KB,
// so Go's default of 100 collects fifteen times a second under load; 400
// cuts the collector's share of the PDP's CPU from about a tenth to a
// few percent, for a heap that peaks at five times the live one.
const pdpGCPercent = 400

// tunePDPGC sets the PDP's GOGC to pdpGCPercent and, so that a large live
// heap cannot grow five-fold unchecked, a soft memory limit of a quarter
// of the machine's RAM. GOGC and GOMEMLIMIT in the environment win.
func tunePDPGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(pdpGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		var si syscall.Sysinfo_t
		if err := syscall.Sysinfo(&si); err == nil && si.Totalram > 0 {
			total := uint64(si.Totalram) * uint64(si.Unit)
			debug.SetMemoryLimit(int64(min(total/4, math.MaxInt64)))
		}
	}
}

// writeHeapProfile writes the heap profile to path; a failure is logged, as
// the run it describes is over.
func writeHeapProfile(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		log.Error("heap profile", "path", path, "err", err)
	}
}

// startCPUProfile profiles the process into path until the returned stop is
// called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
