package pep

import (
	"context"
	"net"
	"time"
)

// Binding is one endpoint admitted on one bridge port in one role: what the enforcer puts in the
// kernel for an Access-Accept or a CoA.
type Binding struct {
	Port string           // bridge port (interface name)
	MAC  net.HardwareAddr // the endpoint's source MAC
	Role string           // admit, remediate, assess, isolate (deny is never bound)
	VLAN int              // the port's PVID from Tunnel-Private-Group-Id, 0 for none
	// Expires is when the session ends without re-authentication (Session-Timeout), zero for
	// never.
	Expires time.Time
}

// Enforcer applies decisions to a switch or bridge. Implementations must be idempotent: applying
// the same binding twice leaves the same state.
type Enforcer interface {
	// Lock puts a port into the state where nothing but EAPOL passes (and, with MAB on, unknown
	// source MACs are reported). It is the first thing done to a managed port.
	Lock(ctx context.Context, port string) error
	// Bind admits a MAC on a port in a role, replacing any earlier binding of that MAC.
	Bind(ctx context.Context, b Binding) error
	// Unbind removes a MAC's binding (Disconnect, Logoff, link down, timeout); the port stays
	// locked.
	Unbind(ctx context.Context, port string, mac net.HardwareAddr) error
	// Bindings reads back what the kernel holds, for reconciliation after a restart.
	Bindings(ctx context.Context) ([]Binding, error)
}
