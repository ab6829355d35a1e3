// Package ima parses the Linux Integrity Measurement Architecture (IMA) binary measurement list
// (binary_runtime_measurements), replays it to the value of PCR 10 in any bank, and checks its
// file measurements against an allowlist of file digests.
package ima
