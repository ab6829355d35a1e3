package radius

import (
	"context"
	"errors"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"trustnac/transport/eap"
)

// DefaultEAPRounds bounds the round trips of one relayed EAP conversation.
const DefaultEAPRounds = 512

// ErrEAPRejected is returned by EAPConversation.Run for an Access-Reject.
var ErrEAPRejected = errors.New("radius: Access-Reject")

// EAPConversation relays one EAP conversation of a peer to a RADIUS server
// the way a pass-through authenticator does (RFC 3579 §2): the peer's
// Identity, then each EAP-Request of an Access-Challenge answered in a new
// Access-Request that carries the challenge's State, until Access-Accept or
// Access-Reject. Test tools and load generators use it to act as NAS and
// supplicant at once.
type EAPConversation struct {
	Client *Client
	Addr   string
	// Request returns a new Access-Request with the NAS's attributes
	// (User-Name, Calling-Station-Id, NAS-Port-Type, ...). Required.
	Request func() *radius.Packet
	// MaxRounds bounds the round trips (default DefaultEAPRounds).
	MaxRounds int
}

// EAPResult is how a relayed conversation ended.
type EAPResult struct {
	Reply   *radius.Packet // the Access-Accept or Access-Reject
	Request *radius.Packet // the Access-Request it answered (to decrypt MS-MPPE keys)
	Rounds  int
}

// Run drives peer to the end. It returns ErrEAPRejected (with the result)
// for an Access-Reject, and an error when an Access-Accept comes that the
// peer does not accept (an EAP-Success before its method succeeded).
func (c *EAPConversation) Run(ctx context.Context, peer *eap.Peer) (*EAPResult, error) {
	max := c.MaxRounds
	if max <= 0 {
		max = DefaultEAPRounds
	}
	// The EAP-Request/Identity the NAS sends on the link (RFC 3748 §5.1).
	resp, err := peer.Handle(ctx, &eap.Packet{Code: eap.CodeRequest, ID: 0, Type: eap.TypeIdentity})
	if err != nil {
		return nil, err
	}
	var state []byte
	for round := 1; round <= max; round++ {
		req := c.Request()
		if state != nil {
			rfc2865.State_Set(req, state)
		}
		raw, err := resp.MarshalBinary()
		if err != nil {
			return nil, err
		}
		SetEAPMessage(req, raw)
		reply, err := c.Client.Exchange(ctx, req, c.Addr)
		if err != nil {
			return nil, err
		}
		res := &EAPResult{Reply: reply, Request: req, Rounds: round}
		if reply.Code == radius.CodeAccessReject {
			return res, ErrEAPRejected
		}
		msg, ok := EAPMessage(reply)
		if !ok {
			return res, fmt.Errorf("radius: %v without EAP-Message", reply.Code)
		}
		pkt, err := eap.Parse(msg)
		if err != nil {
			return res, err
		}
		resp, err = peer.Handle(ctx, pkt)
		switch reply.Code {
		case radius.CodeAccessChallenge:
			if err != nil {
				return res, err
			}
			if resp == nil {
				return res, fmt.Errorf("radius: Access-Challenge with %v left nothing to answer", pkt)
			}
			state = rfc2865.State_Get(reply)
		case radius.CodeAccessAccept:
			if err != nil || peer.Outcome() != eap.Succeeded {
				return res, fmt.Errorf("radius: Access-Accept with %v that the peer does not accept: %v", pkt, err)
			}
			return res, nil
		default:
			return res, fmt.Errorf("radius: unexpected %v", reply.Code)
		}
	}
	return nil, fmt.Errorf("radius: no decision after %d round trips", max)
}
