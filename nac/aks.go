package nac

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	tpmimv "trustnac/imv/tpm"
	"trustnac/pdp"
)

// pdpAddrs are where `nac endpoints` finds the PDP: its admin API and its
// store file.
type pdpAddrs struct {
	configPath, api, store string
}

func (a *pdpAddrs) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&a.configPath, "config", "c", "/etc/trustnac/pdp.yaml", "PDP configuration file")
	f.StringVar(&a.api, "api", "", "admin API address (host:port or unix:/path)")
	f.StringVar(&a.store, "store", "", "PDP store file to use when the PDP is not running")
}

// resolve fills the API address and store path from the PDP configuration
// unless flags named them.
func (a *pdpAddrs) resolve() error {
	if a.api != "" || a.store != "" {
		return nil
	}
	cfg, err := LoadPDPConfig(a.configPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if cfg.API.Listen != "off" {
		a.api = cfg.API.Listen
	}
	a.store = filepath.Join(cfg.StateDir, "pdp.db")
	return nil
}

// unreachable reports whether err means nothing listens at the API address.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func newAKCmds(stdout io.Writer) []*cobra.Command {
	var (
		addrs  pdpAddrs
		asJSON bool
	)
	list := &cobra.Command{
		Use:   "aks",
		Short: "List enrolled attestation keys with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := addrs.resolve(); err != nil {
				return err
			}
			var recs []*tpmimv.AKRecord
			err := errors.New("nac: neither an API address nor a store to read")
			if addrs.api != "" {
				err = callAPI(cmd.Context(), addrs.api, http.MethodGet, "/v1/aks", &recs)
			}
			if err != nil && addrs.store != "" && (addrs.api == "" || unreachable(err)) {
				recs, err = withStore(addrs.store, true, func(s *pdp.BoltStore) ([]*tpmimv.AKRecord, error) { return s.ListAKs() })
			}
			if err != nil {
				return err
			}
			if asJSON {
				if recs == nil {
					recs = []*tpmimv.AKRecord{}
				}
				return printJSON(stdout, recs)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AK\tSTATUS\tMETHOD\tENDPOINT\tENROLLED\tLAST SEEN")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status, r.Method, r.EndpointID,
					fmtTime(r.EnrolledAt), fmtTime(r.LastSeen))
			}
			return tw.Flush()
		},
	}
	addrs.flags(list)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	cmds := []*cobra.Command{list}
	for _, v := range []struct{ verb, status string }{{"approve", pdp.AKApproved}, {"revoke", pdp.AKRevoked}} {
		var a pdpAddrs
		c := &cobra.Command{
			Use:   v.verb + " AK",
			Short: "Set an attestation key (as `nac endpoints aks` names it) " + v.status,
			Long: `Through the PDP's admin API when it listens on a unix socket, or in the store
when the PDP is not running. A revoked key makes every later assessment with it
a denial; an approved key is trusted from the next assessment on.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := a.resolve(); err != nil {
					return err
				}
				rec, err := setAKStatus(cmd.Context(), a, args[0], v.verb, v.status)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: %s\n", rec.Name, rec.Status)
				return nil
			},
		}
		a.flags(c)
		cmds = append(cmds, c)
	}
	return cmds
}

func setAKStatus(ctx context.Context, a pdpAddrs, name, verb, status string) (*tpmimv.AKRecord, error) {
	if a.api != "" {
		var rec tpmimv.AKRecord
		err := callAPI(ctx, a.api, http.MethodPost, "/v1/aks/"+name+"/"+verb, &rec)
		if err == nil {
			return &rec, nil
		}
		if !unreachable(err) || a.store == "" {
			return nil, err
		}
	}
	return withStore(a.store, false, func(s *pdp.BoltStore) (*tpmimv.AKRecord, error) {
		return s.SetAKStatus(name, status, time.Now().UTC())
	})
}

// withStore runs f on the store file, which must not be held by a running
// PDP.
func withStore[T any](path string, readOnly bool, f func(*pdp.BoltStore) (T, error)) (T, error) {
	var zero T
	s, err := pdp.OpenBoltStore(path, readOnly, time.Second)
	if err != nil {
		return zero, err
	}
	defer s.Close()
	return f(s)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
