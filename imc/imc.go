// Package imc holds the endpoint side of TNC: the Collector interface that
// Integrity Measurement Collectors implement (after TCG IF-IMC) and the
// agent's TNC client, which runs the collectors through a PB-TNC handshake.
package imc

import (
	"context"

	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Collector is an Integrity Measurement Collector: it gathers one kind of
// evidence about the endpoint and speaks one PA subtype with the verifier of
// the same subtype on the PDP.
type Collector interface {
	// Name is the collector's short name: "os", "tpm", "ima", "vm".
	Name() string
	// Subtype is the PA subtype of the messages it sends and receives.
	Subtype() pbtnc.PASubtype
	// NewSession starts the collector's part of one TNC handshake.
	NewSession(ctx context.Context) (Session, error)
}

// Session is a collector's state during one handshake.
type Session interface {
	// Begin returns the attributes the collector sends unasked in the first
	// batch of a handshake (IF-IMC BeginHandshake). None is fine.
	Begin(ctx context.Context) ([]patnc.Attribute, error)
	// Receive handles one PA-TNC message from the verifier and returns the
	// attributes of the answer; none means nothing to say.
	Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error)
}
