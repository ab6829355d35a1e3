package nac

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// newTestbedCmd is `nac testbed` (issue 5; owned by the testbed work).
func newTestbedCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{Use: "testbed", Short: "Build the network-namespace lab",
		RunE: func(*cobra.Command, []string) error { return errors.New("nac testbed: not built yet") }}
}
