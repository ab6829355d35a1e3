package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"

	tradius "trustnac/transport/radius"
)

// firstMAC is the MAC the MAB policy knows (02:00:00:00:00:01); -macs N cycles it and the N-1
// MACs after it.
const firstMAC = 0x020000000001

// generator builds and checks the requests of one run.
type generator struct {
	opts   *options
	client *tradius.Client
	secret []byte
	nasIP  netip.Addr
}

// expectation is what an Access-Accept must carry; empty fields are not checked.
type expectation struct{ filter, vlan string }

func (e expectation) check(reply *radius.Packet) error {
	if e.filter != "" {
		if got := rfc2865.FilterID_GetString(reply); got != e.filter {
			return fmt.Errorf("Access-Accept with Filter-Id %q, want %q", got, e.filter)
		}
	}
	if e.vlan != "" {
		if _, got := rfc2868.TunnelPrivateGroupID_GetString(reply); got != e.vlan {
			return fmt.Errorf("Access-Accept with Tunnel-Private-Group-Id %q, want %q", got, e.vlan)
		}
	}
	return nil
}

// isTimeout reports whether err means the server never answered.
func isTimeout(err error) bool { return errors.Is(err, tradius.ErrTimeout) }

func isTTLS(mode string) bool { return strings.HasPrefix(mode, "ttls-") }

// transaction returns the unit of work of the selected mode.
func (g *generator) transaction() (transaction, error) {
	o := g.opts
	switch o.mode {
	case "mab":
		first := expectation{o.expectFilter, o.expectVLAN}
		other := expectation{o.expectFilterOther, o.expectVLANOther}
		return func(ctx context.Context, i uint64) (outcome, int, error) {
			k := i % uint64(o.macs)
			want := other
			if k == 0 {
				want = first
			}
			return g.exchange(ctx, g.mabRequest(firstMAC+k), want)
		}, nil
	case "pap":
		want := expectation{o.expectFilter, o.expectVLAN}
		return func(ctx context.Context, i uint64) (outcome, int, error) {
			return g.exchange(ctx, g.papRequest(firstMAC+i%uint64(o.macs)), want)
		}, nil
	case "ttls-pap":
		return g.ttlsPAPTransaction()
	case "ttls-posture":
		return g.postureTransaction()
	}
	return nil, fmt.Errorf("unknown -mode %q (want mab, pap, ttls-pap or ttls-posture)", o.mode)
}

// macForms returns a MAC as switches send it in MAB: bare lowercase hex for User-Name and
// User-Password, IETF form (RFC 3580 §3.21) for Calling-Station-Id.
func macForms(mac uint64) (bare, ietf string) {
	const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
	var b [12]byte
	var d [17]byte
	for i := range 6 {
		o := byte(mac >> (8 * (5 - i)))
		b[2*i], b[2*i+1] = lower[o>>4], lower[o&15]
		d[3*i], d[3*i+1] = upper[o>>4], upper[o&15]
		if i < 5 {
			d[3*i+2] = '-'
		}
	}
	return string(b[:]), string(d[:])
}

// base is an Access-Request with the NAS attributes every request carries.
func (g *generator) base(service rfc2865.ServiceType, callingStation string) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, g.secret)
	_ = rfc2865.NASIPAddress_Set(p, g.nasIP.AsSlice())
	_ = rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Ethernet)
	_ = rfc2865.ServiceType_Set(p, service)
	_ = rfc2865.CallingStationID_SetString(p, callingStation)
	return p
}

// mabRequest is a MAC Authentication Bypass request: Service-Type Call-Check, the MAC as user
// name and password.
func (g *generator) mabRequest(mac uint64) *radius.Packet {
	bare, ietf := macForms(mac)
	p := g.base(rfc2865.ServiceType_Value_CallCheck, ietf)
	_ = rfc2865.UserName_SetString(p, bare)
	_ = rfc2865.UserPassword_SetString(p, bare)
	return p
}

// papRequest is a password request (RFC 2865 §5.2) of -user from the station mac.
func (g *generator) papRequest(mac uint64) *radius.Packet {
	_, ietf := macForms(mac)
	p := g.base(rfc2865.ServiceType_Value_FramedUser, ietf)
	_ = rfc2865.UserName_SetString(p, g.opts.user)
	_ = rfc2865.UserPassword_SetString(p, g.opts.password)
	return p
}

// exchange sends one request and classifies the reply.
func (g *generator) exchange(ctx context.Context, req *radius.Packet, want expectation) (outcome, int, error) {
	reply, err := g.client.Exchange(ctx, req, g.opts.addr)
	if err != nil {
		if isTimeout(err) {
			return outTimeout, 1, nil
		}
		return outError, 1, err
	}
	switch reply.Code {
	case radius.CodeAccessAccept:
		if err := want.check(reply); err != nil {
			return outError, 1, err
		}
		return outAccept, 1, nil
	case radius.CodeAccessReject:
		return outReject, 1, nil
	}
	return outError, 1, fmt.Errorf("unexpected %v", reply.Code)
}
