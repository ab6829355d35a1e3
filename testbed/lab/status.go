package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Status writes, for each endpoint of a running lab, the role the kernel
// enforces, the PDP's last decision and what it reaches now.
func (l *Lab) Status(ctx context.Context, w io.Writer) error {
	if !netnsExists(NSHypervisor) {
		return fmt.Errorf("lab: no lab running (no namespace %s)", NSHypervisor)
	}
	sets := roleSets(ctx, PEPTable)
	recs, err := l.records(ctx)
	if err != nil {
		fmt.Fprintf(w, "(PDP API: %v)\n", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tMAC\tPORT\tLOCKED\tENFORCED\tPDP\tMETHOD\tREACH\tREASONS")
	for _, e := range l.Eps {
		if !netnsExists(e.NS()) {
			continue
		}
		role := dash(sets[strings.ToLower(e.MAC)])
		pdpRole, method, reasons := "-", "-", "-"
		if r := latest(recs, e); r != nil {
			pdpRole, method, reasons = r.Role, methodOf(r.Channel), dash(strings.Join(r.Reasons, "; "))
		}
		locked := "no"
		if portLocked(ctx, e.Port()) {
			locked = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.MAC, e.Port(), locked, role, pdpRole, method, ProbeReach(e.NS()), reasons)
	}
	tw.Flush()
	fmt.Fprintf(w, "logs: %s/log\n", l.Dir)
	return nil
}
