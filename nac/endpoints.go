package nac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"trustnac/pdp"
)

func newEndpointsCmd(stdout io.Writer) *cobra.Command {
	var (
		configPath string
		apiAddr    string
		storePath  string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "endpoints",
		Short: "List endpoints with their last decision, time and reasons",
		Long: `Asks the running PDP's admin API; when the PDP is not running, reads its store.
The addresses come from the PDP configuration unless --api or --store name them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiAddr == "" && storePath == "" {
				cfg, err := LoadPDPConfig(configPath)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if cfg.API.Listen != "off" {
					apiAddr = cfg.API.Listen
				}
				storePath = filepath.Join(cfg.StateDir, "pdp.db")
			}
			recs, err := listEndpoints(cmd.Context(), apiAddr, storePath)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if recs == nil {
					recs = []*pdp.Record{}
				}
				return enc.Encode(recs)
			}
			PrintEndpoints(stdout, recs)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "/etc/trustnac/pdp.yaml", "PDP configuration file")
	f.StringVar(&apiAddr, "api", "", "admin API address (host:port or unix:/path)")
	f.StringVar(&storePath, "store", "", "PDP store file to read when the PDP is not running")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// listEndpoints asks the API at apiAddr, and reads the store file when
// nothing answers there.
func listEndpoints(ctx context.Context, apiAddr, storePath string) ([]*pdp.Record, error) {
	if apiAddr != "" {
		recs, err := fetchEndpoints(ctx, apiAddr)
		if err == nil {
			return recs, nil
		}
		var op *net.OpError
		if storePath == "" || !errors.As(err, &op) {
			return nil, err
		}
	}
	if storePath == "" {
		return nil, errors.New("nac: neither an API address nor a store to read")
	}
	s, err := pdp.OpenBoltStore(storePath, true, time.Second)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.List()
}

func fetchEndpoints(ctx context.Context, addr string) ([]*pdp.Record, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + addr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		base = "http://pdp"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/endpoints", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nac: api: %s", resp.Status)
	}
	var recs []*pdp.Record
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&recs); err != nil {
		return nil, fmt.Errorf("nac: api: %w", err)
	}
	return recs, nil
}

// PrintEndpoints writes records as a table.
func PrintEndpoints(w io.Writer, recs []*pdp.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tROLE\tRULE\tCHANNEL\tDECIDED\tREASONS")
	for _, r := range recs {
		rule := r.Rule
		if rule == "" {
			rule = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Role, rule, r.Channel,
			r.DecidedAt.Local().Format(time.DateTime), strings.Join(r.Reasons, "; "))
	}
	tw.Flush()
}
