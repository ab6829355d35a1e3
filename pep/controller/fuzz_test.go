package controller

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
)

// FuzzParseAuthorization parses the authorization of arbitrary RADIUS packets: the role is
// always one the PEP knows, the VLAN a valid VID, and writing the authorization back into a
// packet and parsing it again gives the same authorization.
func FuzzParseAuthorization(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := radius.Parse(b, testSecret)
		if err != nil {
			return
		}
		a, err := ParseAuthorization(p)
		if err != nil {
			return
		}
		switch a.Role {
		case RoleAdmit, RoleRemediate, RoleAssess, RoleIsolate, RoleDeny:
		default:
			t.Fatalf("role %q", a.Role)
		}
		if a.VLAN < 0 || a.VLAN > 4094 || len(a.Class) > maxClass {
			t.Fatalf("VLAN %d, %d classes", a.VLAN, len(a.Class))
		}
		q := radius.New(radius.CodeAccessAccept, testSecret)
		if a.Unknown == "" {
			rfc2865.FilterID_SetString(q, a.Role)
		}
		if a.VLAN != 0 {
			rfc2868.TunnelType_Set(q, 0, tunnelTypeVLAN)
			rfc2868.TunnelPrivateGroupID_SetString(q, 0, strconv.Itoa(a.VLAN))
		}
		if a.SessionTimeout != 0 {
			rfc2865.SessionTimeout_Set(q, rfc2865.SessionTimeout(a.SessionTimeout/time.Second))
		}
		if a.Reauth {
			rfc2865.TerminationAction_Set(q, rfc2865.TerminationAction_Value_RADIUSRequest)
		}
		for _, c := range a.Class {
			if len(c) > 0 {
				rfc2865.Class_Add(q, c)
			}
		}
		if a.User != "" {
			rfc2865.UserName_SetString(q, a.User)
		}
		a2, err := ParseAuthorization(q)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		nonEmpty := slices.DeleteFunc(slices.Clone(a.Class), func(c []byte) bool { return len(c) == 0 })
		if a2.Role != a.Role || a2.VLAN != a.VLAN || a2.SessionTimeout != a.SessionTimeout || a2.Reauth != a.Reauth ||
			a2.User != a.User || !slices.EqualFunc(a2.Class, nonEmpty, bytes.Equal) {
			t.Fatalf("round trip: %+v != %+v", a2, a)
		}
	})
}

// FuzzParseDAS reads arbitrary CoA requests: it never panics and a MAC it reports is 6 bytes.
func FuzzParseDAS(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := radius.Parse(b, testSecret)
		if err != nil {
			return
		}
		d := parseDAS(p)
		if d.MAC != nil && len(d.MAC) != 6 {
			t.Fatalf("MAC %x", d.MAC)
		}
	})
}

// FuzzParseARP checks that what ParseARP accepts is what the frame says: the sender is the
// frame's source, the address is usable.
func FuzzParseARP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		mac, ip, ok := ParseARP(b)
		if !ok {
			return
		}
		if !bytes.Equal(mac, b[6:12]) || !ip.Is4() || ip.IsUnspecified() || mac[0]&1 != 0 {
			t.Fatalf("accepted %s %s from %x", mac, ip, b)
		}
		b[6] ^= 0x80 // the parse copied the MAC out of the buffer
		if mac[0] == b[6] {
			t.Fatal("MAC aliases the frame")
		}
	})
}

// FuzzDecodeState decodes state files: what decodes encodes and decodes to the same sessions.
func FuzzDecodeState(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := decodeState(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(stateFile{Version: 1, Sessions: ss})
		if err != nil {
			t.Fatal(err)
		}
		ss2, err := decodeState(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		a, _ := json.Marshal(ss)
		c, _ := json.Marshal(ss2)
		if !bytes.Equal(a, c) {
			t.Fatalf("round trip:\n%s\n%s", a, c)
		}
	})
}

// FuzzParseMAC: an accepted MAC written in the Calling-Station-Id form parses back to itself.
func FuzzParseMAC(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		m2, err := ParseMAC(StationID(m))
		if err != nil || !bytes.Equal(m, m2) || len(m) != 6 {
			t.Fatalf("%q → %s → %s %v", s, m, m2, err)
		}
	})
}
