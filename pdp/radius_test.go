package pdp

import (
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"

	"trustnac/policies"
	"trustnac/transport/eap"
	tradius "trustnac/transport/radius"
)

func TestReplyFromDecision(t *testing.T) {
	r := NewRADIUS(RADIUSConfig{SessionTimeout: time.Hour})
	defer r.Close()
	req := radius.New(radius.CodeAccessRequest, []byte("s"))
	q := &request{Request: &tradius.Request{Packet: req, Client: &tradius.ClientConfig{Name: "nas"}}}
	tests := []struct {
		name    string
		d       Decision
		code    radius.Code
		filter  string
		vlan    string
		timeout uint32
		message string
	}{
		{"admit with VLAN", Decision{Role: "admit", Params: policies.Role{VLAN: 10, FilterID: "staff"}, Reasons: []string{"ok"}},
			radius.CodeAccessAccept, "staff", "10", 3600, ""},
		{"isolate with own timeout", Decision{Role: "isolate", Params: policies.Role{VLAN: 99, SessionTimeout: 300}, Reasons: []string{"quote did not verify"}},
			radius.CodeAccessAccept, "isolate", "99", 300, "quote did not verify"},
		{"assess without VLAN", Decision{Role: "assess"}, radius.CodeAccessAccept, "assess", "", 3600, ""},
		{"deny", Decision{Role: "deny", Reasons: []string{"MAC blocked"}}, radius.CodeAccessReject, "", "", 0, "MAC blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := r.reply(q, &tt.d, &eap.Packet{Code: eap.CodeSuccess, ID: 7}, nil)
			if resp.Code != tt.code {
				t.Fatalf("code %v, want %v", resp.Code, tt.code)
			}
			if got := rfc2865.FilterID_GetString(resp); got != tt.filter {
				t.Errorf("Filter-Id %q, want %q", got, tt.filter)
			}
			_, vlan := rfc2868.TunnelPrivateGroupID_GetString(resp)
			if vlan != tt.vlan {
				t.Errorf("VLAN %q, want %q", vlan, tt.vlan)
			}
			if tt.vlan != "" {
				if _, typ := rfc2868.TunnelType_Get(resp); typ != tunnelTypeVLAN {
					t.Errorf("Tunnel-Type %v", typ)
				}
			}
			if got := uint32(rfc2865.SessionTimeout_Get(resp)); got != tt.timeout {
				t.Errorf("Session-Timeout %d, want %d", got, tt.timeout)
			}
			if got := rfc2865.ReplyMessage_GetString(resp); got != tt.message {
				t.Errorf("Reply-Message %q, want %q", got, tt.message)
			}
			msg, _ := tradius.EAPMessage(resp)
			want := eap.CodeSuccess
			if tt.code == radius.CodeAccessReject {
				want = eap.CodeFailure // a denied endpoint gets no EAP-Success
			}
			if p, err := eap.Parse(msg); err != nil || p.Code != want || p.ID != 7 {
				t.Errorf("EAP-Message %v %v, want %v", p, err, want)
			}
		})
	}
}

func TestSameMAC(t *testing.T) {
	for _, tt := range []struct {
		user string
		want bool
	}{
		{"020000000001", true}, {"02-00-00-00-00-01", true}, {"0200.0000.0001", true}, {"02:00:00:00:00:01", true},
		{"alice", false}, {"02:00:00:00:00:02", false},
	} {
		if got := sameMAC(tt.user, "02:00:00:00:00:01"); got != tt.want {
			t.Errorf("sameMAC(%q) = %v", tt.user, got)
		}
	}
}
