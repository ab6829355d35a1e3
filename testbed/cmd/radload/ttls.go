package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"

	"trustnac/transport/eap"
	"trustnac/transport/eap/ttls"
	tradius "trustnac/transport/radius"
)

// maxRounds bounds the RADIUS round trips of one EAP conversation; a TTLS/PAP conversation
// takes 5 to 8 with 1 KiB fragments.
const maxRounds = 50

// ttlsTransaction returns the unit of the ttls modes: one whole EAP conversation.
func (g *generator) ttlsTransaction() (transaction, error) {
	o := g.opts
	if o.ca == "" || o.serverName == "" {
		return nil, errors.New("ttls modes need -ca and -server-name (the server certificate is always verified)")
	}
	pem, err := os.ReadFile(o.ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s holds no PEM certificate", o.ca)
	}
	var version uint16
	switch o.tlsVersion {
	case "1.2":
		version = tls.VersionTLS12
	case "1.3":
		version = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("-tls %q: want 1.2 or 1.3", o.tlsVersion)
	}
	conf := &tls.Config{RootCAs: roots, ServerName: o.serverName, MinVersion: version, MaxVersion: version}
	want := expectation{o.expectFilter, o.expectVLAN}
	return func(ctx context.Context, i uint64) (outcome, int, error) {
		return g.conversation(ctx, firstMAC+i%uint64(o.macs), conf, want)
	}, nil
}

// conversation runs one EAP-TTLS/PAP authentication as a NAS relays it (RFC 3579): the peer's
// EAP-Response/Identity, then each EAP-Request from an Access-Challenge answered in a new
// Access-Request carrying the challenge's State, until Access-Accept or Access-Reject.
func (g *generator) conversation(ctx context.Context, mac uint64, conf *tls.Config, want expectation) (outcome, int, error) {
	o := g.opts
	// PAP inside the tunnel. An inner EAP method the server may start after PAP (the PDP offers
	// posture assessment, PT-EAP) is refused with a Nak, as a supplicant configured for
	// TTLS/PAP alone does: the inner eap.Peer has no methods.
	inner := ttls.NewInnerPeer(o.user, o.password, eap.NewPeer(o.identity))
	method := ttls.NewPeer(&ttls.PeerConfig{TLS: conf, Phase2: inner})
	defer method.Close()
	peer := eap.NewPeer(o.identity, eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod { return method }})
	// The EAP-Request/Identity the NAS sent on the link (RFC 3748 §5.1).
	resp, err := peer.Handle(ctx, &eap.Packet{Code: eap.CodeRequest, ID: 0, Type: eap.TypeIdentity})
	if err != nil {
		return outError, 0, err
	}
	_, ietf := macForms(mac)
	var state []byte
	for round := 1; round <= maxRounds; round++ {
		req := g.base(rfc2865.ServiceType_Value_FramedUser, ietf)
		_ = rfc2865.UserName_SetString(req, o.identity)
		if state != nil {
			_ = rfc2865.State_Set(req, state)
		}
		raw, err := resp.MarshalBinary()
		if err != nil {
			return outError, round, err
		}
		tradius.SetEAPMessage(req, raw)
		reply, err := g.client.Exchange(ctx, req, o.addr)
		if err != nil {
			if isTimeout(err) {
				return outTimeout, round, nil
			}
			return outError, round, err
		}
		if reply.Code == radius.CodeAccessReject {
			if !method.ConnectionState().HandshakeComplete {
				// Most likely the peer refused the server's certificate and sent an alert.
				return outError, round, errors.New("Access-Reject before the TLS handshake completed")
			}
			return outReject, round, nil // with or without an EAP-Failure
		}
		msg, ok := tradius.EAPMessage(reply)
		if !ok {
			return outError, round, fmt.Errorf("%v without EAP-Message", reply.Code)
		}
		pkt, err := eap.Parse(msg)
		if err != nil {
			return outError, round, err
		}
		resp, err = peer.Handle(ctx, pkt)
		switch reply.Code {
		case radius.CodeAccessChallenge:
			if err != nil {
				return outError, round, err
			}
			if resp == nil {
				return outError, round, fmt.Errorf("Access-Challenge with %v left nothing to answer", pkt)
			}
			state = rfc2865.State_Get(reply)
		case radius.CodeAccessAccept:
			if err != nil || peer.Outcome() != eap.Succeeded {
				return outError, round, fmt.Errorf("Access-Accept with %v the peer does not accept: %v", pkt, err)
			}
			if err := want.check(reply); err != nil {
				return outError, round, err
			}
			if err := checkKeys(reply, req, method.MSK()); err != nil {
				return outError, round, err
			}
			return outAccept, round, nil
		default:
			return outError, round, fmt.Errorf("unexpected %v", reply.Code)
		}
	}
	return outError, maxRounds, fmt.Errorf("no decision after %d round trips", maxRounds)
}

// checkKeys verifies that the Access-Accept gives the NAS the MSK the peer derived, in
// MS-MPPE-Recv-Key (its first 32 octets) and MS-MPPE-Send-Key (the next 32) (RFC 2548 §2.4.2,
// §2.4.3; RFC 5216 §2.3, which EAP-TTLS follows).
func checkKeys(reply, req *radius.Packet, msk []byte) error {
	if len(msk) != 64 {
		return fmt.Errorf("peer derived an MSK of %d octets", len(msk))
	}
	recv, err := microsoft.MSMPPERecvKey_Lookup(reply, req)
	if err != nil {
		return fmt.Errorf("MS-MPPE-Recv-Key: %w", err)
	}
	send, err := microsoft.MSMPPESendKey_Lookup(reply, req)
	if err != nil {
		return fmt.Errorf("MS-MPPE-Send-Key: %w", err)
	}
	if len(recv) < 32 || len(send) < 32 ||
		subtle.ConstantTimeCompare(recv[:32], msk[:32]) != 1 || subtle.ConstantTimeCompare(send[:32], msk[32:]) != 1 {
		return errors.New("MS-MPPE keys differ from the peer's MSK")
	}
	return nil
}
