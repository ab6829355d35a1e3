// Package policies holds the policy files that network admins write for trustnac: the YAML file
// format, its strict loader, the evaluator that turns an endpoint's facts into one of the five
// access roles, and the explainer behind `nac policy explain`.
//
// A policy file names the enforcement parameters of each role (VLAN, RADIUS Filter-Id, session
// timeout, remediation instructions), endpoint groups (by MAC, identity, attestation key or a CEL
// condition), and an ordered list of rules whose CEL conditions read the facts that the IMVs
// collected (namespaces endpoint, os, tpm, ima, vm). The first matching rule decides; when none
// matches, the file's default applies. MAC Authentication Bypass (MAB) decisions use group
// membership alone.
//
// Loading is strict: unknown fields, unknown roles, bad MAC patterns, out-of-range VLANs and CEL
// that does not compile are errors naming the file, line and column, and all errors of a file are
// reported together (see [LoadErrors]). CEL is compiled once at load time; evaluation is bounded by
// a cost limit and honours context cancellation, and a CEL runtime error makes that rule not match
// (fail closed). A loaded [Policy] is immutable and safe for concurrent use.
//
// The package imports no other package of the project. The file format and the facts contract are
// described in README.md next to this file.
package policies
