package controller

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3576"

	tradius "trustnac/transport/radius"
)

var (
	testMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	testSecret = []byte("testing123")
	testNAS    = NAS{Identifier: "hv1", IP: netip.MustParseAddr("10.77.0.1"), BridgeMAC: net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x01}, Bridge: "br-nac"}
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{"02:00:00:00:00:01", "02:00:00:00:00:01"},
		{"02-00-00-00-00-01", "02:00:00:00:00:01"},
		{"0200.0000.0001", "02:00:00:00:00:01"},
		{"020000000001", "02:00:00:00:00:01"},
		{"0A0B0C0D0E0F", "0a:0b:0c:0d:0e:0f"},
		{"02:00:00:00:00", ""},
		{"02:00:00:00:00:01:02:03", ""},
		{"zz0000000001", ""},
		{"", ""},
	}
	for _, tt := range tests {
		m, err := ParseMAC(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseMAC(%q) = %s, want an error", tt.in, m)
			}
			continue
		}
		if err != nil || m.String() != tt.want {
			t.Errorf("ParseMAC(%q) = %s, %v; want %s", tt.in, m, err, tt.want)
		}
	}
	if got := StationID(testMAC); got != "02-00-00-00-00-01" {
		t.Errorf("StationID = %q", got)
	}
}

func TestSessionIDUnique(t *testing.T) {
	now := time.Now()
	ids := map[string]bool{}
	for _, id := range []string{
		SessionID(5, testMAC, now), SessionID(6, testMAC, now), SessionID(5, net.HardwareAddr{2, 0, 0, 0, 0, 2}, now),
		SessionID(5, testMAC, now.Add(time.Nanosecond)),
	} {
		if ids[id] || len(id) > 253 {
			t.Fatalf("session id %q repeated or too long", id)
		}
		ids[id] = true
	}
}

func TestEAPRequestAttributes(t *testing.T) {
	eapMsg := []byte{2, 7, 0, 10, 1, 'a', 'l', 'i', 'c', 'e'}
	p := testNAS.EAPRequest(testSecret, "p1", testMAC, "alice", eapMsg, []byte("state-1"))
	b, err := tradius.EncodeRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := radius.Parse(b, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"User-Name", rfc2865.UserName_GetString(q), "alice"},
		{"NAS-Port-Id", rfc2869.NASPortID_GetString(q), "p1"},
		{"NAS-Port-Type", rfc2865.NASPortType_Get(q), rfc2865.NASPortType_Value_Ethernet},
		{"Calling-Station-Id", rfc2865.CallingStationID_GetString(q), "02-00-00-00-00-01"},
		{"Called-Station-Id", rfc2865.CalledStationID_GetString(q), "02-AA-00-00-00-01:br-nac"},
		{"NAS-Identifier", rfc2865.NASIdentifier_GetString(q), "hv1"},
		{"NAS-IP-Address", rfc2865.NASIPAddress_Get(q).String(), "10.77.0.1"},
		{"Framed-MTU", rfc2865.FramedMTU_Get(q), rfc2865.FramedMTU(1400)},
		{"Service-Type", rfc2865.ServiceType_Get(q), rfc2865.ServiceType_Value_FramedUser},
		{"State", string(rfc2865.State_Get(q)), "state-1"},
		{"Message-Authenticator", len(rfc2869.MessageAuthenticator_Get(q)), 16},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if m, ok := tradius.EAPMessage(q); !ok || !bytes.Equal(m, eapMsg) {
		t.Errorf("EAP-Message = %x", m)
	}
	if err := tradius.VerifyRequest(b, testSecret); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestMABRequest(t *testing.T) {
	p := testNAS.MABRequest(testSecret, "p2", testMAC)
	b, err := tradius.EncodeRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := radius.Parse(b, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if u, s := rfc2865.UserName_GetString(q), rfc2865.CallingStationID_GetString(q); u != s || u != "02-00-00-00-00-01" {
		t.Errorf("User-Name %q, Calling-Station-Id %q", u, s)
	}
	if pw := rfc2865.UserPassword_GetString(q); pw != "02-00-00-00-00-01" {
		t.Errorf("User-Password %q", pw)
	}
	if st := rfc2865.ServiceType_Get(q); st != rfc2865.ServiceType_Value_CallCheck {
		t.Errorf("Service-Type %v", st)
	}
	if _, ok := tradius.EAPMessage(q); ok {
		t.Error("MAB request carries EAP")
	}
}

func accept(f func(p *radius.Packet)) *radius.Packet {
	p := radius.New(radius.CodeAccessAccept, testSecret)
	f(p)
	return p
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name    string
		p       *radius.Packet
		want    Authorization
		wantErr bool
	}{
		{"admit", accept(func(p *radius.Packet) { rfc2865.FilterID_SetString(p, "admit") }), Authorization{Role: "admit"}, false},
		{"unknown role isolates", accept(func(p *radius.Packet) { rfc2865.FilterID_SetString(p, "superuser") }), Authorization{Role: "isolate", Unknown: "superuser"}, false},
		{"no role isolates", accept(func(p *radius.Packet) {}), Authorization{Role: "isolate", Unknown: "(none)"}, false},
		{"deny", accept(func(p *radius.Packet) { rfc2865.FilterID_SetString(p, "deny") }), Authorization{Role: "deny"}, false},
		{"vlan tag 0", accept(func(p *radius.Packet) {
			rfc2865.FilterID_SetString(p, "assess")
			rfc2868.TunnelType_Set(p, 0, 13)
			rfc2868.TunnelMediumType_Set(p, 0, rfc2868.TunnelMediumType_Value_IEEE802)
			rfc2868.TunnelPrivateGroupID_SetString(p, 0, "20")
		}), Authorization{Role: "assess", VLAN: 20}, false},
		{"vlan tag 1", accept(func(p *radius.Packet) {
			rfc2865.FilterID_SetString(p, "admit")
			rfc2868.TunnelType_Set(p, 1, 13)
			rfc2868.TunnelPrivateGroupID_SetString(p, 1, "10")
		}), Authorization{Role: "admit", VLAN: 10}, false},
		{"vlan not a number", accept(func(p *radius.Packet) {
			rfc2865.FilterID_SetString(p, "admit")
			rfc2868.TunnelPrivateGroupID_SetString(p, 0, "guests")
		}), Authorization{Role: "admit"}, true},
		{"vlan out of range", accept(func(p *radius.Packet) {
			rfc2865.FilterID_SetString(p, "admit")
			rfc2868.TunnelPrivateGroupID_SetString(p, 0, "4095")
		}), Authorization{Role: "admit"}, true},
		{"timers and class", accept(func(p *radius.Packet) {
			rfc2865.FilterID_SetString(p, "remediate")
			rfc2865.SessionTimeout_Set(p, 3600)
			rfc2865.TerminationAction_Set(p, rfc2865.TerminationAction_Value_RADIUSRequest)
			rfc2865.Class_AddString(p, "trustnac:remediate")
		}), Authorization{Role: "remediate", SessionTimeout: time.Hour, Reauth: true, Class: [][]byte{[]byte("trustnac:remediate")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Role != tt.want.Role || got.Unknown != tt.want.Unknown || got.VLAN != tt.want.VLAN ||
				got.SessionTimeout != tt.want.SessionTimeout || got.Reauth != tt.want.Reauth ||
				!slices.EqualFunc(got.Class, tt.want.Class, bytes.Equal) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseDAS(t *testing.T) {
	coa := func(f func(p *radius.Packet)) *radius.Packet {
		p := radius.New(radius.CodeCoARequest, testSecret)
		f(p)
		return p
	}
	tests := []struct {
		name string
		p    *radius.Packet
		want dasRequest
	}{
		{"role change", coa(func(p *radius.Packet) {
			rfc2866.AcctSessionID_SetString(p, "s1")
			rfc2865.CallingStationID_SetString(p, "02:00:00:00:00:01")
			rfc2865.FilterID_SetString(p, "isolate")
			rfc2865.NASIdentifier_SetString(p, "hv1")
		}), dasRequest{SessionID: "s1", MAC: testMAC, NASID: "hv1", HasAuthz: true}},
		{"authorize only", coa(func(p *radius.Packet) {
			rfc2866.AcctSessionID_SetString(p, "s1")
			rfc2865.ServiceType_Set(p, rfc2865.ServiceType(rfc3576.ServiceType_Value_AuthorizeOnly))
			rfc2865.State_SetString(p, "x")
		}), dasRequest{SessionID: "s1", AuthorizeOnly: true}},
		{"other service", coa(func(p *radius.Packet) {
			rfc2866.AcctSessionID_SetString(p, "s1")
			rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_LoginUser)
		}), dasRequest{SessionID: "s1", BadService: true}},
		{"unsupported attribute", coa(func(p *radius.Packet) {
			rfc2866.AcctSessionID_SetString(p, "s1")
			rfc2865.IdleTimeout_Set(p, 10)
		}), dasRequest{SessionID: "s1", Unsupported: rfc2865.IdleTimeout_Type}},
		{"bad station id", coa(func(p *radius.Packet) {
			rfc2865.CallingStationID_SetString(p, "not-a-mac")
			rfc2865.NASIPAddress_Set(p, net.IPv4(10, 0, 0, 9))
		}), dasRequest{NASIP: netip.MustParseAddr("10.0.0.9")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseDAS(tt.p)
			if got.SessionID != tt.want.SessionID || !bytes.Equal(got.MAC, tt.want.MAC) || got.NASID != tt.want.NASID ||
				got.NASIP != tt.want.NASIP || got.AuthorizeOnly != tt.want.AuthorizeOnly || got.HasAuthz != tt.want.HasAuthz ||
				got.Unsupported != tt.want.Unsupported || got.BadService != tt.want.BadService {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// arpFrame builds an Ethernet frame with an ARP packet.
func arpFrame(src, sha net.HardwareAddr, op uint16, spa [4]byte) []byte {
	f := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...)
	f = append(f, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, byte(op>>8), byte(op))
	f = append(f, sha...)
	f = append(f, spa[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0, 10, 77, 0, 2)
	return f
}

func TestParseARP(t *testing.T) {
	other := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	tests := []struct {
		name   string
		frame  []byte
		wantIP string // "" for not ok
	}{
		{"request", arpFrame(testMAC, testMAC, 1, [4]byte{10, 77, 0, 11}), "10.77.0.11"},
		{"reply", arpFrame(testMAC, testMAC, 2, [4]byte{10, 77, 0, 11}), "10.77.0.11"},
		{"probe", arpFrame(testMAC, testMAC, 1, [4]byte{}), ""},
		{"sender is not the source", arpFrame(testMAC, other, 1, [4]byte{10, 77, 0, 11}), ""},
		{"bad op", arpFrame(testMAC, testMAC, 3, [4]byte{10, 77, 0, 11}), ""},
		{"short", arpFrame(testMAC, testMAC, 1, [4]byte{10, 77, 0, 11})[:30], ""},
		{"not arp", append(append([]byte{1, 2, 3, 4, 5, 6}, testMAC...), append([]byte{0x08, 0x00}, make([]byte, 40)...)...), ""},
	}
	for _, tt := range tests {
		mac, ip, ok := ParseARP(tt.frame)
		if tt.wantIP == "" {
			if ok {
				t.Errorf("%s: ok with %s %s", tt.name, mac, ip)
			}
			continue
		}
		if !ok || ip.String() != tt.wantIP || !bytes.Equal(mac, testMAC) {
			t.Errorf("%s: %s %s %t", tt.name, mac, ip, ok)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if ss, err := readState(dir); err != nil || ss != nil {
		t.Fatalf("missing state file: %v %v", ss, err)
	}
	want := []storedSession{{Port: "p1", MAC: "02:00:00:00:00:01", Method: MethodMAB, SessionID: "abc", Class: [][]byte{[]byte("trustnac:assess")}, Started: time.Unix(1700000000, 0).UTC(), IP: "10.77.0.11"}}
	if err := writeState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil || len(got) != 1 || got[0].SessionID != "abc" || got[0].Method != MethodMAB || !got[0].Started.Equal(want[0].Started) || string(got[0].Class[0]) != "trustnac:assess" {
		t.Fatalf("read back %+v %v", got, err)
	}
	for _, bad := range []string{`{"version":2,"sessions":[]}`, `{`, `[]`} {
		if _, err := decodeState([]byte(bad)); err == nil {
			t.Errorf("decodeState(%s) accepted", bad)
		}
	}
}

func TestAccountingRequest(t *testing.T) {
	now := time.Now()
	rec := acctRecord{Status: AcctStop, SessionID: "s1", Port: "p1", MAC: testMAC, User: "alice", IP: netip.MustParseAddr("10.77.0.11"),
		Class: [][]byte{[]byte("trustnac:admit")}, Started: now.Add(-90 * time.Second), Cause: rfc2866.AcctTerminateCause_Value_AdminReset, Method: MethodDot1X}
	p := testNAS.AccountingRequest(testSecret, rec, now)
	if rfc2866.AcctStatusType_Get(p) != AcctStop || rfc2866.AcctSessionID_GetString(p) != "s1" ||
		rfc2865.FramedIPAddress_Get(p).String() != "10.77.0.11" || rfc2865.Class_GetString(p) != "trustnac:admit" ||
		rfc2866.AcctSessionTime_Get(p) != 90 || rfc2866.AcctTerminateCause_Get(p) != rfc2866.AcctTerminateCause_Value_AdminReset ||
		rfc2865.UserName_GetString(p) != "alice" || rfc2869.NASPortID_GetString(p) != "p1" {
		t.Errorf("accounting request attributes wrong: %+v", p.Attributes)
	}
	rec.Method = MethodMAB
	if u := rfc2865.UserName_GetString(testNAS.AccountingRequest(testSecret, rec, now)); u != "02-00-00-00-00-01" {
		t.Errorf("MAB User-Name %q", u)
	}
	on := testNAS.AccountingRequest(testSecret, acctRecord{Status: AcctOn, SessionID: "x"}, now)
	if _, err := rfc2865.CallingStationID_Lookup(on); err == nil {
		t.Error("Accounting-On names an endpoint")
	}
}
