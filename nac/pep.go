package nac

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// newPEPCmd is `nac pep` (issue 5; owned by the PEP daemon work).
func newPEPCmd(stderr io.Writer) *cobra.Command {
	return &cobra.Command{Use: "pep", Short: "Run the policy enforcement point on a Linux bridge",
		RunE: func(*cobra.Command, []string) error { return errors.New("nac pep: not built yet") }}
}
