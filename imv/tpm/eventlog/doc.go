// Package eventlog replays TCG PC Client measured-boot event logs (TCG PC Client Platform
// Firmware Profile Specification, section 10) against quoted PCR values and extracts the boot
// facts the TPM verifier reports: Secure Boot state, boot loaders, kernels and the kernel
// command line.
//
// SHA-1 and SHA-256 banks are replayed by github.com/google/go-attestation; every bank,
// including SM3-256 (which go-attestation lacks), is also replayed by this package's own bounded
// parser of the crypto-agile format, which honours the StartupLocality event for PCR 0.
package eventlog
