// Package osimv is the Operating System Integrity Measurement Verifier: it
// reads the IETF PA-TNC attributes of the Operating System PA subtype (RFC
// 5792 §3.5, §4.2) that the collector of package osimc sends, asks once for
// the required attributes that did not arrive, and turns what it received
// into the `os` facts the policy's CEL conditions see.
//
// The verifier judges completeness only: it recommends Allow when every
// required attribute arrived and parsed, Isolate when some were still
// missing after being asked for, and no recommendation when the endpoint
// sent nothing. Whether the facts are acceptable is the policy's decision.
package osimv
