package eap

import (
	"context"
	"errors"
)

// Step is what a server method does after a Response: send another Request with Data as its
// type-data, or finish with success or failure.
type Step struct {
	Data    []byte // type-data of the next Request; ignored when Done
	Done    bool
	Success bool // with Done: the method authenticated the peer
}

// ServerMethod is the authenticator side of one EAP method instance (one per conversation).
type ServerMethod interface {
	Type() Type
	// Start returns the type-data of the method's first Request.
	Start(ctx context.Context) ([]byte, error)
	// Process handles the type-data of the peer's Response to the last Request. An error ends the
	// conversation with EAP-Failure.
	Process(ctx context.Context, data []byte) (Step, error)
}

// PeerMethod is the peer side of one EAP method instance.
type PeerMethod interface {
	Type() Type
	// Process handles the type-data of a Request and returns the type-data of the Response. An
	// error makes the peer drop the Request (RFC 3748 §2.1: invalid packets are silently
	// discarded); ErrPeerGiveUp ends the conversation.
	Process(ctx context.Context, data []byte) ([]byte, error)
	// Succeeded reports whether the method reached a state in which an EAP-Success is acceptable
	// (for tunnel methods: the tunnel is up and the inner conversation ended in success). A
	// Success before that is ignored, which defeats forged Successes.
	Succeeded() bool
}

// KeyingMethod is a method that derives keys (RFC 5247): TTLS exports MSK and EMSK.
type KeyingMethod interface {
	// MSK returns the 64-byte Master Session Key, nil before the method succeeded.
	MSK() []byte
	// EMSK returns the 64-byte Extended Master Session Key, nil if none.
	EMSK() []byte
}

// ErrPeerGiveUp is returned by a peer method that cannot go on; the conversation fails.
var ErrPeerGiveUp = errors.New("eap: peer gives up")
