// Package ima parses the Linux Integrity Measurement Architecture (IMA) binary measurement
// list (securityfs ima/binary_runtime_measurements), replays it to the value of PCR 10 in any
// PCR bank, and checks its file measurements against an allowlist of file digests.
//
// The package is pure: apart from LoadAllowlist, which reads one file, it does no I/O and no
// logging. The binary format and the template digest follow the kernel's
// security/integrity/ima (ima_fs.c ima_measurements_show, ima_crypto.c
// ima_calc_field_array_hash, ima_template_lib.c).
package ima
