package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"trustnac/pep/eapol"
	"trustnac/transport/eap"
	tradius "trustnac/transport/radius"
)

// maxIdentities caps the EAP identities remembered per port between requests.
const maxIdentities = 4096

// eapBackend relays one port's EAP to the PDP in Access-Requests (RFC 3579).
type eapBackend struct {
	c    *Controller
	port string
	mu   sync.Mutex
	ids  map[[6]byte]string
}

var _ eapol.Backend = (*eapBackend)(nil)

// errBadAnswer reports a RADIUS answer that does not fit the conversation.
var errBadAnswer = errors.New("controller: unusable answer from the PDP")

// Relay implements eapol.Backend.
func (b *eapBackend) Relay(ctx context.Context, mac net.HardwareAddr, eapResp, state []byte) ([]byte, []byte, *eapol.Result, error) {
	var k [6]byte
	copy(k[:], mac)
	resp, err := eap.Parse(eapResp)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("controller: %w", err)
	}
	b.mu.Lock()
	if resp.Code == eap.CodeResponse && resp.Type == eap.TypeIdentity {
		if len(b.ids) >= maxIdentities {
			clear(b.ids)
		}
		id := string(resp.Data)
		if len(id) > 253 {
			id = id[:253]
		}
		b.ids[k] = id
	}
	user := b.ids[k]
	b.mu.Unlock()

	c := b.c
	req := c.nas.EAPRequest(c.cfg.Secret, b.port, mac, user, eapResp, state)
	reply, err := c.client.Exchange(ctx, req, c.cfg.Auth)
	if err != nil {
		return nil, nil, nil, err
	}
	msg, hasEAP := tradius.EAPMessage(reply)
	// eapFailure is what the supplicant is told when it is not let in: the
	// server's EAP-Failure on a Reject, and on an Accept the PEP refuses, a
	// Failure of its own instead of the server's EAP-Success.
	eapFailure := func() []byte {
		f, _ := (&eap.Packet{Code: eap.CodeFailure, ID: resp.ID}).MarshalBinary()
		return f
	}
	switch reply.Code {
	case radius.CodeAccessChallenge:
		if !hasEAP {
			return nil, nil, nil, fmt.Errorf("%w: Access-Challenge without EAP-Message", errBadAnswer)
		}
		return msg, rfc2865.State_Get(reply), nil, nil
	case radius.CodeAccessAccept:
		b.forget(k)
		a, err := ParseAuthorization(reply)
		if err != nil {
			c.log.Error("Access-Accept cannot be enforced; rejecting", "port", b.port, "mac", mac.String(), "err", err)
			return eapFailure(), nil, &eapol.Result{Accept: false}, nil
		}
		if a.Role == RoleDeny {
			return eapFailure(), nil, &eapol.Result{Accept: false}, nil
		}
		if a.Unknown != "" {
			c.st.unknownRoles.Add(1)
			c.log.Error("Access-Accept with a role this PEP does not know: isolating (fail closed)", "port", b.port, "mac", mac.String(), "filter_id", a.Unknown)
		}
		if !hasEAP {
			msg, _ = (&eap.Packet{Code: eap.CodeSuccess, ID: resp.ID}).MarshalBinary()
		}
		if a.User == "" {
			a.User = user
		}
		return msg, nil, &eapol.Result{Accept: true, Role: a.Role, VLAN: a.VLAN, SessionTimeout: a.SessionTimeout, Class: a.Class, User: a.User}, nil
	case radius.CodeAccessReject:
		b.forget(k)
		if hasEAP {
			return msg, nil, &eapol.Result{Accept: false}, nil
		}
		return eapFailure(), nil, &eapol.Result{Accept: false}, nil
	}
	return nil, nil, nil, fmt.Errorf("%w: %v", errBadAnswer, reply.Code)
}

func (b *eapBackend) forget(k [6]byte) {
	b.mu.Lock()
	delete(b.ids, k)
	b.mu.Unlock()
}
