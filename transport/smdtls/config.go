package smdtls

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults and limits of a Config.
const (
	// DefaultMTU is the largest datagram (DTLS record and headers, UDP
	// payload) either side sends when Config.MTU is 0.
	DefaultMTU = 1200
	// MinMTU and MaxMTU bound Config.MTU. MaxMTU is the receive buffer
	// pion/dtls reads datagrams into.
	MinMTU = 512
	MaxMTU = 8192

	// DefaultMaxMessage is the reassembly cap when Config.MaxMessage is 0:
	// the largest PT-TLS message (header included) accepted or sent.
	DefaultMaxMessage = 1 << 20
	// MinMaxMessage and MaxMessageLimit bound Config.MaxMessage.
	MinMaxMessage   = 4096
	MaxMessageLimit = 16 << 20

	// DefaultHandshakeTimeout bounds one DTLS handshake when
	// Config.HandshakeTimeout is 0.
	DefaultHandshakeTimeout = 10 * time.Second

	// DefaultMaxConns bounds a Listener's associations (handshaking or
	// established) when Config.MaxConns is 0.
	DefaultMaxConns = 1024
	// DefaultMaxHandshakes bounds a Listener's concurrent handshakes when
	// Config.MaxHandshakes is 0.
	DefaultMaxHandshakes = 128

	// MaxIdentityLen is the longest PSK identity accepted: the length RFC
	// 4279 §5.3 requires implementations to support (the wire allows
	// 2^16-1 bytes, §2).
	MaxIdentityLen = 128
	// MinPSKLen and MaxPSKLen bound a pre-shared key. RFC 4279 §5.3 asks
	// for up to 64 bytes; fewer than 16 (128 bits) are refused here.
	MinPSKLen = 16
	MaxPSKLen = 512
)

// PSKStore gives the server the pre-shared key of a PSK identity (RFC 4279
// §2). An error — ErrUnknownIdentity, wrapped, for unknown or revoked
// identities — fails the handshake; the client is told
// unknown_psk_identity for ErrUnknownIdentity and internal_error for other
// errors. PSK is called from handshake goroutines concurrently.
type PSKStore interface {
	PSK(identity []byte) ([]byte, error)
}

// PSKStoreFunc adapts a function to PSKStore.
type PSKStoreFunc func(identity []byte) ([]byte, error)

// PSK calls f(identity).
func (f PSKStoreFunc) PSK(identity []byte) ([]byte, error) { return f(identity) }

// Config configures Listen (server) and Dial (client). A Config is copied
// when passed; later changes do not affect running listeners or conns.
type Config struct {
	// PSKStore looks up client identities (server only, required).
	PSKStore PSKStore

	// Identity is the PSK identity the client sends (client only,
	// required, 1..MaxIdentityLen bytes).
	Identity []byte
	// PSK is the client's pre-shared key (client only, required,
	// MinPSKLen..MaxPSKLen bytes). It is never logged.
	PSK []byte

	// MTU is the largest datagram sent, records and headers included;
	// 0 means DefaultMTU.
	MTU int
	// MaxMessage is the largest PT-TLS message sent or reassembled,
	// header included; 0 means DefaultMaxMessage.
	MaxMessage int
	// HandshakeTimeout bounds a DTLS handshake; 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// MaxConns bounds a Listener's associations (server only); 0 means
	// DefaultMaxConns. ClientHellos beyond it are dropped.
	MaxConns int
	// MaxHandshakes bounds a Listener's concurrent handshakes (server
	// only); 0 means DefaultMaxHandshakes.
	MaxHandshakes int

	// Logger receives handshake and connection events; nil discards
	// them. Keys are never logged.
	Logger *slog.Logger
}

// settled returns a copy of c with defaults applied, checked for the role.
func (c *Config) settled(server bool) (*Config, error) {
	if c == nil {
		return nil, errors.New("smdtls: nil Config")
	}
	s := *c
	s.Identity = bytes.Clone(c.Identity)
	s.PSK = bytes.Clone(c.PSK)
	if s.MTU == 0 {
		s.MTU = DefaultMTU
	}
	if s.MaxMessage == 0 {
		s.MaxMessage = DefaultMaxMessage
	}
	if s.HandshakeTimeout == 0 {
		s.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if s.MaxConns == 0 {
		s.MaxConns = DefaultMaxConns
	}
	if s.MaxHandshakes == 0 {
		s.MaxHandshakes = DefaultMaxHandshakes
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case s.MTU < MinMTU || s.MTU > MaxMTU:
		return nil, fmt.Errorf("smdtls: MTU %d outside [%d, %d]", s.MTU, MinMTU, MaxMTU)
	case s.MaxMessage < MinMaxMessage || s.MaxMessage > MaxMessageLimit:
		return nil, fmt.Errorf("smdtls: MaxMessage %d outside [%d, %d]", s.MaxMessage, MinMaxMessage, MaxMessageLimit)
	case s.HandshakeTimeout < 0:
		return nil, errors.New("smdtls: negative HandshakeTimeout")
	case s.MaxConns < 0 || s.MaxHandshakes < 0:
		return nil, errors.New("smdtls: negative MaxConns or MaxHandshakes")
	}
	if server {
		if s.PSKStore == nil {
			return nil, errors.New("smdtls: server Config needs a PSKStore")
		}
		return &s, nil
	}
	switch {
	case len(s.Identity) == 0 || len(s.Identity) > MaxIdentityLen:
		return nil, fmt.Errorf("smdtls: client Identity of %d bytes, want 1..%d", len(s.Identity), MaxIdentityLen)
	case len(s.PSK) < MinPSKLen || len(s.PSK) > MaxPSKLen:
		return nil, fmt.Errorf("smdtls: client PSK of %d bytes, want %d..%d", len(s.PSK), MinPSKLen, MaxPSKLen)
	}
	return &s, nil
}

// fragmentChunk is the payload of one fragment for an MTU: the datagram
// minus the DTLS record header, the GCM explicit nonce and tag, and the
// fragment header.
func fragmentChunk(mtu int) int {
	return mtu - recordHeaderLen - explicitNonceLen - gcmTagLen - dataHeaderLen
}
