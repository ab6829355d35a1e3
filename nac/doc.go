// Package nac wires trustnac together: the configuration of each role with
// strict decoding and validation, the start and stop of each role's
// components in order (rolling back a half start), and the `nac` command
// line. nac/cmd/nac is the thin main that calls Main.
package nac
