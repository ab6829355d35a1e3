// Package pdp is the policy decision point: the TNC server (TNCS) that runs
// the verifiers through a PB-TNC handshake and lets the policy decide, the
// PT-TLS listener side of it, the store of endpoint records, the policy
// source with its reloads, and the admin API. Package nac wires these
// components into `nac pdp`.
package pdp
