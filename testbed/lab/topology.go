package lab

import (
	"fmt"
	"net/netip"
)

// Names and addresses of the lab. They are fixed so that Down can find what
// an earlier Up (or a crashed one) left behind.
const (
	// Prefix starts every namespace the lab makes.
	Prefix = "tnac-"
	// DefaultDir holds state, configuration, pid files and logs.
	DefaultDir = "/run/trustnac-testbed"

	NSHypervisor = Prefix + "hv"
	NSPDP        = Prefix + "pdp"
	NSRemedy     = Prefix + "rem"
	NSServer     = Prefix + "srv"

	Bridge = "br-nac"

	AddrBridge = "10.77.0.1"
	AddrPDP    = "10.77.0.2"
	AddrRemedy = "10.77.0.3"
	AddrServer = "10.77.0.4"

	// Secret is the RADIUS shared secret between the PEP and the PDP (a
	// lab, not production: it is written into the generated configs).
	Secret = "testbed-secret"

	// PortHTTP is where the remediation server and the server listen.
	PortHTTP = 80
	// PortPTTLS is the PDP's PT-TLS port (RFC 6876 §6).
	PortPTTLS = 271
)

// Uplink is an unmanaged bridge port to a server namespace.
type Uplink struct {
	NS, Port, Addr string
}

// Uplinks are the bridge ports the PEP must not manage.
var Uplinks = []Uplink{
	{NSPDP, "up-pdp", AddrPDP},
	{NSRemedy, "up-rem", AddrRemedy},
	{NSServer, "up-srv", AddrServer},
}

// Method is how an endpoint is (to be) decided.
type Method string

// Methods.
const (
	Dot1X Method = "802.1X"
	MAB   Method = "MAB"
	PTTLS Method = "MAB+PT-TLS"
)

// Endpoint is one endpoint namespace on a managed bridge port.
type Endpoint struct {
	// Name is the short name: namespace Prefix+Name, port "p-"+Name.
	Name string
	// MAC and Addr of its interface eth0.
	MAC  string
	Addr string
	// Identity is the 802.1X / SASL identity; "" for no agent.
	Identity string
	// Fixture is the facts tree under testbed/fixtures it starts with.
	Fixture string
	// Method is how it is decided; Agent says whether it runs `nac agent`
	// at all, TPM whether it has a swtpm.
	Method Method
	Agent  bool
	TPM    bool
	// Tamper extends PCR 7 before the agent starts.
	Tamper bool
	// Late endpoints are added after the others were decided (the VM).
	Late bool
	// Expect is the role expected after the first admission.
	Expect string
}

// NS is the endpoint's namespace.
func (e *Endpoint) NS() string { return Prefix + e.Name }

// Port is its bridge port in the hypervisor namespace.
func (e *Endpoint) Port() string { return "p-" + e.Name }

// Endpoints of the scenario.
func Endpoints() []*Endpoint {
	return []*Endpoint{
		{Name: "healthy", MAC: "02:77:00:00:00:11", Addr: "10.77.0.11", Identity: "tpm-healthy", Fixture: "healthy", Method: Dot1X, Agent: true, TPM: true, Expect: "admit"},
		{Name: "tampered", MAC: "02:77:00:00:00:12", Addr: "10.77.0.12", Identity: "tpm-tampered", Fixture: "healthy", Method: Dot1X, Agent: true, TPM: true, Tamper: true, Expect: "isolate"},
		{Name: "remed", MAC: "02:77:00:00:00:13", Addr: "10.77.0.13", Identity: "tpm-remed", Fixture: "telnet", Method: Dot1X, Agent: true, TPM: true, Expect: "remediate"},
		{Name: "mab", MAC: "02:77:00:00:00:14", Addr: "10.77.0.14", Identity: "tpm-mab", Fixture: "healthy", Method: PTTLS, Agent: true, TPM: true, Expect: "assess"},
		{Name: "denied", MAC: "02:77:00:00:00:15", Addr: "10.77.0.15", Method: MAB, Expect: "deny"},
		{Name: "vm", MAC: "02:77:00:00:00:16", Addr: "10.77.0.16", Identity: "tpm-vm", Fixture: "healthy", Method: Dot1X, Agent: true, TPM: true, Late: true, Expect: "admit"},
	}
}

// Reach is what an endpoint can reach, as probed with TCP.
type Reach struct {
	PDP, Remedy, Server bool
}

func (r Reach) String() string {
	b := func(ok bool, s string) string {
		if ok {
			return s
		}
		return "-"
	}
	return fmt.Sprintf("%s%s%s", b(r.PDP, "P"), b(r.Remedy, "R"), b(r.Server, "S"))
}

// ReachOf is what role's enforcement lets through (DESIGN.md, "Enforcement
// on the bridge"): admit everything, the restricted roles only the PDP and
// the remediation server, deny (no binding) nothing.
func ReachOf(role string) Reach {
	switch role {
	case "admit":
		return Reach{true, true, true}
	case "assess", "isolate", "remediate":
		return Reach{true, true, false}
	}
	return Reach{}
}

// Probe targets: the PDP's PT-TLS port, the remediation server, the server.
var (
	probePDP    = netip.AddrPortFrom(netip.MustParseAddr(AddrPDP), PortPTTLS)
	probeRemedy = netip.AddrPortFrom(netip.MustParseAddr(AddrRemedy), PortHTTP)
	probeServer = netip.AddrPortFrom(netip.MustParseAddr(AddrServer), PortHTTP)
)
