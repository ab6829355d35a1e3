// Package lab builds the trustnac network-namespace testbed behind `nac
// testbed` and `make demo`: a hypervisor namespace whose Linux bridge is
// guarded by `nac pep`, a PDP namespace running `nac pdp` (RADIUS, PT-TLS),
// a remediation server and "the rest of the network" on unmanaged uplinks,
// and endpoint namespaces on managed veth ports, each with its own swtpm
// and its own `nac agent` (IEEE 802.1X-2010 supplicant, or PT-TLS, RFC 6876,
// after MAB).
//
// Every name is predictable (prefix "tnac-", state under DefaultDir), so
// Down removes everything Up made, also after a crash: it kills by pid
// file, by network namespace and by state directory, then deletes the
// namespaces and the directory. The scenario (Run) proves each outcome with
// real traffic from inside the endpoint namespaces and renders a table.
package lab
