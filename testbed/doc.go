// Package testbed holds what the demo and the end-to-end tests stand on:
// software TPMs (swtpm) with fresh state and their own EK certificate
// authority, and, from the network issues on, the namespace lab behind
// `make demo`.
package testbed
