package eapol

import (
	"context"
	"net"
)

// FrameConn is what the PAEs need of a port: Conn on Linux, an in-memory pipe in tests.
type FrameConn interface {
	// ReadFrom returns the next EAPOL frame and its source address; it returns ctx's error when
	// ctx ends.
	ReadFrom(ctx context.Context) (net.HardwareAddr, *Frame, error)
	// WriteTo sends f to dst.
	WriteTo(dst net.HardwareAddr, f *Frame) error
}
