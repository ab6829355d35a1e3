// Command nac is trustnac's one binary: `nac pdp`, `nac agent`, `nac policy`,
// `nac endpoints` and the other subcommands live in package nac.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"trustnac/nac"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := nac.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
