package nac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"trustnac/pdp"
)

func newEndpointsCmd(stdout io.Writer) *cobra.Command {
	var (
		addrs  pdpAddrs
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "endpoints",
		Short: "List endpoints with their last decision, time and reasons",
		Long: `Asks the running PDP's admin API; when the PDP is not running, reads its store.
The addresses come from the PDP configuration unless --api or --store name them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := addrs.resolve(); err != nil {
				return err
			}
			recs, err := listEndpoints(cmd.Context(), addrs.api, addrs.store)
			if err != nil {
				return err
			}
			if asJSON {
				if recs == nil {
					recs = []*pdp.Record{}
				}
				return printJSON(stdout, recs)
			}
			PrintEndpoints(stdout, recs)
			return nil
		},
	}
	addrs.flags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newAKCmds(stdout)...)
	cmd.AddCommand(newPSKCmds(stdout)...)
	return cmd
}

// newPSKCmds are `nac endpoints psks` and `nac endpoints revoke-psks`
// (`nac endpoints revoke AK` revokes an attestation key, and with it the
// PSKs wrapped for it).
func newPSKCmds(stdout io.Writer) []*cobra.Command {
	var (
		addrs  pdpAddrs
		asJSON bool
	)
	list := &cobra.Command{
		Use:   "psks",
		Short: "List the PSKs of the SM channel (identity, endpoint, kind, validity; never keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := addrs.resolve(); err != nil {
				return err
			}
			var psks []*pdp.PSK
			err := errors.New("nac: neither an API address nor a store to read")
			if addrs.api != "" {
				err = callAPI(cmd.Context(), addrs.api, http.MethodGet, "/v1/psks", &psks)
			}
			if err != nil && addrs.store != "" && (addrs.api == "" || unreachable(err)) {
				psks, err = withStore(addrs.store, true, func(s *pdp.BoltStore) ([]*pdp.PSK, error) { return s.PSKs().List() })
			}
			if err != nil {
				return err
			}
			if asJSON {
				if psks == nil {
					psks = []*pdp.PSK{}
				}
				return printJSON(stdout, psks)
			}
			PrintPSKs(stdout, psks, time.Now())
			return nil
		},
	}
	addrs.flags(list)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var ra pdpAddrs
	revoke := &cobra.Command{
		Use:   "revoke-psks ENDPOINT",
		Short: "Revoke every SM-channel PSK of an endpoint (as `nac endpoints` names it)",
		Long: `Through the PDP's admin API when it listens on a unix socket, or in the store
when the PDP is not running. The endpoint's next SM-DTLS handshake is refused
(unknown_psk_identity); its agent deletes the PSK and falls back to PT-TLS,
where it is enrolled again only if the policy and its AK still allow it. To
keep it out, revoke its attestation key (nac endpoints revoke AK), which
revokes the PSKs wrapped for that key as well.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ra.resolve(); err != nil {
				return err
			}
			n, err := revokeEndpoint(cmd.Context(), ra, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %d PSK(s) revoked\n", args[0], n)
			return nil
		},
	}
	ra.flags(revoke)
	return []*cobra.Command{list, revoke}
}

func revokeEndpoint(ctx context.Context, a pdpAddrs, id string) (int, error) {
	if a.api != "" {
		var out struct {
			Revoked int `json:"revoked_psks"`
		}
		err := callAPI(ctx, a.api, http.MethodPost, "/v1/endpoints/"+url.PathEscape(id)+"/revoke", &out)
		if err == nil {
			return out.Revoked, nil
		}
		if !unreachable(err) || a.store == "" {
			return 0, err
		}
	}
	return withStore(a.store, false, func(s *pdp.BoltStore) (int, error) { return s.PSKs().RevokeEndpoint(id) })
}

// PrintPSKs writes PSKs as a table; STATE is valid, expired or revoked at
// now.
func PrintPSKs(w io.Writer, psks []*pdp.PSK, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IDENTITY\tENDPOINT\tKIND\tSTATE\tISSUED\tEXPIRES\tAK")
	for _, k := range psks {
		state := "valid"
		switch {
		case k.Revoked:
			state = "revoked"
		case !now.Before(k.Expires):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Identity, k.Endpoint, k.Kind, state,
			fmtTime(k.Issued), fmtTime(k.Expires), k.AKName)
	}
	tw.Flush()
}

// listEndpoints asks the API at apiAddr, and reads the store file when
// nothing answers there.
func listEndpoints(ctx context.Context, apiAddr, storePath string) ([]*pdp.Record, error) {
	if apiAddr != "" {
		recs, err := fetchEndpoints(ctx, apiAddr)
		if err == nil {
			return recs, nil
		}
		if storePath == "" || !unreachable(err) {
			return nil, err
		}
	}
	if storePath == "" {
		return nil, errors.New("nac: neither an API address nor a store to read")
	}
	return withStore(storePath, true, func(s *pdp.BoltStore) ([]*pdp.Record, error) { return s.List() })
}

// apiClient returns an HTTP client for the admin API at addr
// (host:port or unix:/path) and the base URL to use with it.
func apiClient(addr string) (*http.Client, string) {
	client := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + addr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		base = "http://pdp"
	}
	return client, base
}

// callAPI sends method to path of the admin API at addr and decodes the
// JSON answer into out.
func callAPI(ctx context.Context, addr, method, path string, out any) error {
	client, base := apiClient(addr)
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 256<<20)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(body).Decode(&e)
		return fmt.Errorf("nac: api: %s: %s", resp.Status, e.Error)
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("nac: api: %w", err)
	}
	return nil
}

func fetchEndpoints(ctx context.Context, addr string) ([]*pdp.Record, error) {
	var recs []*pdp.Record
	if err := callAPI(ctx, addr, http.MethodGet, "/v1/endpoints", &recs); err != nil {
		return nil, err
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
