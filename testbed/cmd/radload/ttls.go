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
// takes 4 to 8 with 1 KiB fragments, one with the posture assessment inside about 10.
const maxRounds = 50

// supplicant is the peer side of one EAP conversation and what radload checks at its end.
type supplicant struct {
	peer *eap.Peer
	// userName is the RADIUS User-Name of every Access-Request: the peer's outer EAP identity,
	// as a NAS copies it from the EAP-Response/Identity (RFC 3579 §2.1).
	userName string
	// established reports whether the conversation got far enough that an Access-Reject is the
	// server's decision, not a failed TLS handshake; early explains a reject before that.
	established func() bool
	early       string
	// msk is the Master Session Key the peer derived, nil before success.
	msk func() []byte
	// accepted checks the peer's side of an Access-Accept (nil: nothing more to check).
	accepted func(reply *radius.Packet) error
}

// framedMTU is the Framed-MTU of every EAP Access-Request.
const framedMTU = 1400

// converse relays one EAP conversation of s through the server with tradius.EAPConversation,
// as a pass-through NAS does (RFC 3579), and classifies its end: an Access-Accept must carry
// want and the peer's MSK in the MS-MPPE keys; an Access-Reject before s is established is an
// error, one after it a reject.
func (g *generator) converse(ctx context.Context, mac uint64, s *supplicant, want expectation) (outcome, int, error) {
	_, ietf := macForms(mac)
	conv := &tradius.EAPConversation{
		Client:    g.client,
		Addr:      g.opts.addr,
		MaxRounds: maxRounds,
		Request: func() *radius.Packet {
			req := g.base(rfc2865.ServiceType_Value_FramedUser, ietf)
			_ = rfc2865.UserName_SetString(req, s.userName)
			// What an Ethernet authenticator sends (hostapd, `nac pep`): the
			// server fragments its EAP-Requests to fit (RFC 3579 §2.4).
			_ = rfc2865.FramedMTU_Set(req, framedMTU)
			return req
		},
	}
	res, err := conv.Run(ctx, s.peer)
	rounds := 0 // unknown: EAPConversation returns no result when an exchange fails
	if res != nil {
		rounds = res.Rounds
	}
	switch {
	case errors.Is(err, tradius.ErrEAPRejected):
		if !s.established() {
			return outError, rounds, errors.New(s.early)
		}
		return outReject, rounds, nil // with or without an EAP-Failure
	case isTimeout(err):
		return outTimeout, rounds, nil
	case err != nil:
		return outError, rounds, err
	}
	if err := want.check(res.Reply); err != nil {
		return outError, rounds, err
	}
	if err := checkKeys(res.Reply, res.Request, s.msk()); err != nil {
		return outError, rounds, err
	}
	if s.accepted != nil {
		if err := s.accepted(res.Reply); err != nil {
			return outError, rounds, err
		}
	}
	return outAccept, rounds, nil
}

// ttlsPAPTransaction returns the unit of mode ttls-pap: one EAP-TTLS conversation with PAP
// inside (RFC 5281 §11.2.5).
func (g *generator) ttlsPAPTransaction() (transaction, error) {
	o := g.opts
	if o.ca == "" || o.serverName == "" {
		return nil, errors.New("ttls-pap needs -ca and -server-name (the server certificate is always verified)")
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
	case "1.2", "":
		version = tls.VersionTLS12
	case "1.3":
		version = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("-tls %q: want 1.2 or 1.3", o.tlsVersion)
	}
	conf := &tls.Config{RootCAs: roots, ServerName: o.serverName, MinVersion: version, MaxVersion: version}
	want := expectation{o.expectFilter, o.expectVLAN}
	return func(ctx context.Context, i uint64) (outcome, int, error) {
		// PAP inside the tunnel. An inner EAP method the server may start after PAP (the PDP
		// offers posture assessment, PT-EAP) is refused with a Nak, as a supplicant configured
		// for TTLS/PAP alone does: the inner eap.Peer has no methods.
		inner := ttls.NewInnerPeer(o.user, o.password, eap.NewPeer(o.identity))
		method := ttls.NewPeer(&ttls.PeerConfig{TLS: conf, Phase2: inner})
		defer method.Close()
		s := &supplicant{
			peer:     eap.NewPeer(o.identity, eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod { return method }}),
			userName: o.identity,
			established: func() bool {
				return method.ConnectionState().HandshakeComplete
			},
			// Most likely the peer refused the server's certificate and sent an alert.
			early: "Access-Reject before the TLS handshake completed",
			msk:   method.MSK,
		}
		return g.converse(ctx, firstMAC+i%uint64(o.macs), s, want)
	}, nil
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
