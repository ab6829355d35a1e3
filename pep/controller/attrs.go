package controller

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3576"

	tradius "trustnac/transport/radius"
)

// Roles the PEP enforces (the pep/bridge role sets) and deny, which is never bound.
const (
	RoleAdmit     = "admit"
	RoleRemediate = "remediate"
	RoleAssess    = "assess"
	RoleIsolate   = "isolate"
	RoleDeny      = "deny"
)

// Authentication methods of a session.
const (
	MethodDot1X = "dot1x" // IEEE 802.1X with EAP relayed to the PDP
	MethodMAB   = "mab"   // MAC authentication bypass
)

// framedMTU is the Framed-MTU sent with EAP (RFC 3579 §2.4): what fits an EAPOL frame on
// Ethernet with room for tunnel headers.
const framedMTU = 1400

// tunnelTypeVLAN is Tunnel-Type VLAN (RFC 3580 §3.31).
const tunnelTypeVLAN = 13

// maxClass caps the Class attributes kept per session.
const maxClass = 4

// NAS describes this PEP as a RADIUS client: the identification attributes of every request
// (RFC 2865 §5.4 NAS-IP-Address, §5.32 NAS-Identifier; RFC 3580 §3.20 Called-Station-Id).
type NAS struct {
	Identifier string
	IP         netip.Addr       // zero: not sent
	BridgeMAC  net.HardwareAddr // for Called-Station-Id
	Bridge     string
}

// calledStationID is the bridge MAC in IETF form, ":" and the bridge name (RFC 3580 §3.20,
// which puts the SSID there on 802.11; the bridge name plays that part).
func (n NAS) calledStationID() string {
	s := StationID(n.BridgeMAC)
	if n.Bridge != "" {
		s += ":" + n.Bridge
	}
	return s
}

// StationID writes a MAC in the form RFC 3580 §3.21 recommends for Calling-Station-Id:
// upper-case hex octets separated by "-", e.g. "02-00-00-00-00-01".
func StationID(mac net.HardwareAddr) string {
	var b strings.Builder
	for i, o := range mac {
		if i > 0 {
			b.WriteByte('-')
		}
		fmt.Fprintf(&b, "%02X", o)
	}
	return b.String()
}

// ParseMAC reads a MAC in the usual formats: 02:00:00:00:00:01, 02-00-00-00-00-01,
// 0200.0000.0001 and 020000000001, either case. Only 48-bit MACs are accepted.
func ParseMAC(s string) (net.HardwareAddr, error) {
	if len(s) == 12 {
		b, err := hex.DecodeString(s)
		if err == nil {
			return net.HardwareAddr(b), nil
		}
	}
	if len(s) > 17 {
		return nil, fmt.Errorf("controller: %w: %q", errBadMAC, s)
	}
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("controller: %w: %q", errBadMAC, s)
	}
	return m, nil
}

var errBadMAC = errors.New("not a MAC address")

// portRequest holds what identifies an endpoint on a port in an Access-Request.
type portRequest struct {
	Port string
	MAC  net.HardwareAddr
}

// newAccessRequest starts an Access-Request (RFC 2865 §4.1) with the NAS and port attributes
// RFC 3580 §3 asks of an IEEE 802.1X authenticator: NAS-IP-Address and/or NAS-Identifier,
// NAS-Port-Id (the port's name, RFC 2869 §5.17), NAS-Port-Type Ethernet (15),
// Calling-Station-Id (the endpoint's MAC) and Called-Station-Id. The tradius client adds the
// Message-Authenticator.
func (n NAS) newAccessRequest(secret []byte, pr portRequest) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, secret)
	n.identify(p)
	rfc2869.NASPortID_SetString(p, pr.Port)
	rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Ethernet)
	rfc2865.CallingStationID_SetString(p, StationID(pr.MAC))
	rfc2865.CalledStationID_SetString(p, n.calledStationID())
	return p
}

func (n NAS) identify(p *radius.Packet) {
	if n.IP.Is4() {
		rfc2865.NASIPAddress_Set(p, net.IP(n.IP.AsSlice()))
	}
	if n.Identifier != "" {
		rfc2865.NASIdentifier_SetString(p, n.Identifier)
	}
}

// EAPRequest builds the Access-Request that relays one EAP-Response (RFC 3579 §3): User-Name
// (the EAP identity), EAP-Message, State from the last Access-Challenge, Framed-MTU 1400 and
// Service-Type Framed (RFC 3580 §3.32).
func (n NAS) EAPRequest(secret []byte, port string, mac net.HardwareAddr, user string, eapMsg, state []byte) *radius.Packet {
	p := n.newAccessRequest(secret, portRequest{port, mac})
	if user != "" {
		if len(user) > 253 {
			user = user[:253]
		}
		rfc2865.UserName_SetString(p, user)
	}
	rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_FramedUser)
	rfc2865.FramedMTU_Set(p, framedMTU)
	tradius.SetEAPMessage(p, eapMsg)
	if len(state) > 0 {
		rfc2865.State_Set(p, state)
	}
	return p
}

// MABRequest builds a MAC authentication bypass Access-Request: User-Name and User-Password
// are the MAC in the Calling-Station-Id form (the PDP recognises MAB by User-Name equal to
// Calling-Station-Id), Service-Type Call-Check (10), no EAP.
func (n NAS) MABRequest(secret []byte, port string, mac net.HardwareAddr) *radius.Packet {
	p := n.newAccessRequest(secret, portRequest{port, mac})
	id := StationID(mac)
	rfc2865.UserName_SetString(p, id)
	rfc2865.UserPassword_SetString(p, id)
	rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_CallCheck)
	return p
}

// Authorization is what an Access-Accept or a CoA-Request tells the PEP to enforce.
type Authorization struct {
	// Role is the role to bind: the Filter-Id (RFC 2865 §5.11). An unknown or missing role
	// becomes isolate with Unknown set (fail closed); "deny" means no access.
	Role    string
	Unknown string // the Filter-Id the PEP did not know, "" when known
	// VLAN is Tunnel-Private-Group-Id of a Tunnel-Type VLAN tunnel (RFC 3580 §3.31), 0 for none.
	VLAN int
	// SessionTimeout is Session-Timeout (RFC 2865 §5.27), 0 for none.
	SessionTimeout time.Duration
	// Reauth is true when Termination-Action is RADIUS-Request (RFC 2865 §5.29): at
	// SessionTimeout the session is authenticated again rather than ended.
	Reauth bool
	// Class is every Class attribute (RFC 2865 §5.25), to be echoed in accounting.
	Class [][]byte
	// User is the User-Name of the reply, if any.
	User string
}

// ErrBadReply reports an Access-Accept or CoA whose attributes cannot be enforced.
var ErrBadReply = errors.New("controller: unusable authorization attributes")

// ParseAuthorization reads the authorization attributes of an Access-Accept or a CoA-Request.
// It never admits more than the reply says: an unknown role becomes isolate.
func ParseAuthorization(p *radius.Packet) (Authorization, error) {
	var a Authorization
	filters, _ := rfc2865.FilterID_GetStrings(p)
	role := ""
	if len(filters) > 0 {
		role = filters[0]
	}
	switch role {
	case RoleAdmit, RoleRemediate, RoleAssess, RoleIsolate, RoleDeny:
		a.Role = role
	default:
		a.Role, a.Unknown = RoleIsolate, role
		if role == "" {
			a.Unknown = "(none)"
		}
	}
	vlan, err := tunnelVLAN(p)
	if err != nil {
		return a, err
	}
	a.VLAN = vlan
	if st, err := rfc2865.SessionTimeout_Lookup(p); err == nil {
		a.SessionTimeout = time.Duration(st) * time.Second
	}
	if ta, err := rfc2865.TerminationAction_Lookup(p); err == nil && ta == rfc2865.TerminationAction_Value_RADIUSRequest {
		a.Reauth = true
	}
	classes, _ := rfc2865.Class_Gets(p)
	for _, c := range classes {
		if len(a.Class) < maxClass {
			a.Class = append(a.Class, append([]byte(nil), c...))
		}
	}
	a.User = rfc2865.UserName_GetString(p)
	return a, nil
}

// tunnelVLAN returns the VLAN of the first tunnel (any tag) whose Tunnel-Type is VLAN and whose
// Tunnel-Private-Group-Id is a VID, 0 when there is none. A group id that is not a number in
// 1..4094 is an error: the PEP cannot enforce it and must not guess.
func tunnelVLAN(p *radius.Packet) (int, error) {
	types := map[byte]bool{}
	for _, a := range p.Attributes {
		if a.Type == rfc2868.TunnelType_Type && len(a.Attribute) == 4 {
			tag := a.Attribute[0]
			if tag > 0x1f {
				tag = 0
			}
			if int(a.Attribute[1])<<16|int(a.Attribute[2])<<8|int(a.Attribute[3]) == tunnelTypeVLAN {
				types[tag] = true
			}
		}
	}
	for _, a := range p.Attributes {
		if a.Type != rfc2868.TunnelPrivateGroupID_Type || len(a.Attribute) == 0 {
			continue
		}
		tag, val := byte(0), a.Attribute
		if val[0] <= 0x1f {
			tag, val = val[0], val[1:]
		}
		if len(types) > 0 && !types[tag] {
			continue
		}
		v, err := strconv.Atoi(string(val))
		if err != nil || v < 1 || v > 4094 {
			return 0, fmt.Errorf("%w: Tunnel-Private-Group-Id %q is not a VLAN", ErrBadReply, val)
		}
		return v, nil
	}
	return 0, nil
}

// AcctStatus is Acct-Status-Type (RFC 2866 §5.1).
type AcctStatus = rfc2866.AcctStatusType

// Accounting statuses.
const (
	AcctStart   = rfc2866.AcctStatusType_Value_Start
	AcctStop    = rfc2866.AcctStatusType_Value_Stop
	AcctInterim = rfc2866.AcctStatusType_Value_InterimUpdate
	AcctOn      = rfc2866.AcctStatusType_Value_AccountingOn
	AcctOff     = rfc2866.AcctStatusType_Value_AccountingOff
)

// acctRecord is what one Accounting-Request reports.
type acctRecord struct {
	Status    AcctStatus
	SessionID string
	Port      string
	MAC       net.HardwareAddr
	User      string
	IP        netip.Addr
	Class     [][]byte
	Started   time.Time
	Cause     rfc2866.AcctTerminateCause // Stop only
	Method    string
}

// AccountingRequest builds an Accounting-Request (RFC 2866 §4.1, §5) for rec. Accounting-On and
// -Off carry only the NAS attributes and a session id of their own.
func (n NAS) AccountingRequest(secret []byte, rec acctRecord, now time.Time) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, secret)
	rfc2866.AcctStatusType_Set(p, rec.Status)
	n.identify(p)
	rfc2866.AcctSessionID_SetString(p, rec.SessionID)
	rfc2869.EventTimestamp_Set(p, now)
	if rec.Status == AcctOn || rec.Status == AcctOff {
		return p
	}
	rfc2869.NASPortID_SetString(p, rec.Port)
	rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Ethernet)
	rfc2865.CallingStationID_SetString(p, StationID(rec.MAC))
	rfc2865.CalledStationID_SetString(p, n.calledStationID())
	user := rec.User
	if user == "" || rec.Method == MethodMAB {
		user = StationID(rec.MAC)
	}
	if len(user) > 253 {
		user = user[:253]
	}
	rfc2865.UserName_SetString(p, user)
	if rec.IP.Is4() {
		rfc2865.FramedIPAddress_Set(p, net.IP(rec.IP.AsSlice()))
	}
	for _, c := range rec.Class {
		rfc2865.Class_Add(p, c)
	}
	if rec.Status != AcctStart && !rec.Started.IsZero() {
		rfc2866.AcctSessionTime_Set(p, rfc2866.AcctSessionTime(max(0, now.Sub(rec.Started)/time.Second)))
	}
	if rec.Status == AcctStop {
		rfc2866.AcctTerminateCause_Set(p, rec.Cause)
	}
	return p
}

// SessionID makes an Acct-Session-Id unique per session (RFC 2866 §5.5): the port's ifindex,
// the MAC and the start time in nanoseconds, in hex.
func SessionID(ifindex int, mac net.HardwareAddr, start time.Time) string {
	return fmt.Sprintf("%04x%s%016x", ifindex&0xffff, hex.EncodeToString(mac), uint64(start.UnixNano()))
}

// dasAllowed lists the attributes a CoA-Request or Disconnect-Request may carry (RFC 5176 §3.5:
// session identification, authorization changes the PEP can apply, and the packet's own).
var dasAllowed = map[radius.Type]bool{
	rfc2865.UserName_Type: true, rfc2865.NASIPAddress_Type: true, rfc2865.NASIdentifier_Type: true,
	rfc2869.NASPortID_Type: true, rfc2865.NASPort_Type: true, rfc2865.NASPortType_Type: true,
	rfc2865.CallingStationID_Type: true, rfc2865.CalledStationID_Type: true,
	rfc2866.AcctSessionID_Type: true, rfc2865.State_Type: true, rfc2865.Class_Type: true,
	rfc2865.FilterID_Type: true, rfc2868.TunnelType_Type: true, rfc2868.TunnelMediumType_Type: true,
	rfc2868.TunnelPrivateGroupID_Type: true, rfc2865.SessionTimeout_Type: true,
	rfc2865.TerminationAction_Type: true, rfc2865.ServiceType_Type: true,
	rfc2869.MessageAuthenticator_Type: true, rfc2869.EventTimestamp_Type: true,
	rfc2865.ReplyMessage_Type: true, rfc2865.FramedIPAddress_Type: true,
	rfc2866.AcctMultiSessionID_Type: true, rfc2865.ProxyState_Type: true,
}

// dasRequest is a parsed CoA-Request or Disconnect-Request.
type dasRequest struct {
	SessionID     string
	MAC           net.HardwareAddr // Calling-Station-Id; nil when absent
	Port          string           // NAS-Port-Id
	NASID         string
	NASIP         netip.Addr
	AuthorizeOnly bool
	HasAuthz      bool // Filter-Id or Tunnel attributes present
	Unsupported   radius.Type
	BadService    bool
}

// parseDAS reads the identification and action of a Dynamic Authorization request
// (RFC 5176 §3). It never fails: what does not add up is reported in the fields.
func parseDAS(p *radius.Packet) dasRequest {
	var d dasRequest
	for _, a := range p.Attributes {
		if !dasAllowed[a.Type] && d.Unsupported == 0 {
			d.Unsupported = a.Type
		}
		switch a.Type {
		case rfc2865.FilterID_Type, rfc2868.TunnelPrivateGroupID_Type:
			d.HasAuthz = true
		}
	}
	d.SessionID = rfc2866.AcctSessionID_GetString(p)
	if s := rfc2865.CallingStationID_GetString(p); s != "" {
		if m, err := ParseMAC(s); err == nil {
			d.MAC = m
		}
	}
	d.Port = rfc2869.NASPortID_GetString(p)
	d.NASID = rfc2865.NASIdentifier_GetString(p)
	if ip, err := rfc2865.NASIPAddress_Lookup(p); err == nil {
		d.NASIP, _ = netip.AddrFromSlice(ip.To4())
	}
	if st, err := rfc2865.ServiceType_Lookup(p); err == nil {
		if st == rfc2865.ServiceType(rfc3576.ServiceType_Value_AuthorizeOnly) {
			d.AuthorizeOnly = true
		} else {
			d.BadService = true
		}
	}
	return d
}
