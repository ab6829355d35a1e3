package tnc

import (
	"fmt"
	"math"

	"trustnac/transport/eap"
	"trustnac/transport/pbtnc"
)

// Limits.
const (
	// DefaultMaxMessage is the default reassembly cap: the largest PB-TNC
	// batch carried in EAP (RFC 7171 §4.1, RFC 5793 §4.1).
	DefaultMaxMessage = pbtnc.EAPMaxBatchSize
	// DefaultMaxFragment is the default largest EAP-TNC type-data sent: what
	// one EAP packet holds (65,535 less the EAP header and Type octet), so
	// that inside a TTLS tunnel, which fragments on its own, a batch goes
	// out whole. Set ServerConfig.MaxFragment lower for EAP-TNC outside a
	// tunnel.
	DefaultMaxFragment = eap.MaxLength - eap.HeaderLen - 1
	// MinFragment is the smallest MaxFragment accepted; smaller values are
	// raised to it (the first fragment needs 5 octets of header).
	MinFragment = 16
	// DefaultMaxFragments caps the EAP-TNC fragments of one received batch.
	DefaultMaxFragments = 256
	// maxPTEAPData is the largest batch one PT-EAP packet holds.
	maxPTEAPData = eap.MaxLength - eap.HeaderLen - 1 - 1
)

// ServerConfig configures a Server. The PB-TNC session behind it should use
// the same batch limit (pbtnc.Config.MaxBatchSize = pbtnc.EAPMaxBatchSize).
type ServerConfig struct {
	// Type is eap.TypePTEAP (RFC 7171) or eap.TypeTNC (EAP-TNC).
	Type eap.Type
	// MaxMessage caps the size of a received or sent PB-TNC batch
	// (reassembly cap); 0 means DefaultMaxMessage. For PT-EAP it cannot
	// exceed what one EAP packet holds.
	MaxMessage int
	// MaxFragment is the largest EAP-TNC type-data sent in one packet
	// (flags and length included); 0 means DefaultMaxFragment. PT-EAP does
	// not fragment and ignores it.
	MaxFragment int
	// MaxFragments caps the fragments of one received EAP-TNC batch; 0
	// means DefaultMaxFragments.
	MaxFragments int
}

// PeerConfig configures a Peer; the fields mean what they mean in
// ServerConfig.
type PeerConfig struct {
	Type         eap.Type
	MaxMessage   int
	MaxFragment  int
	MaxFragments int
}

// channel is the EAP-TNC/PT-EAP framing shared by Server and Peer: decoding
// with the version check, reassembly of received fragments and
// fragmentation of sent batches. It performs no I/O.
type channel struct {
	typ          eap.Type
	version      uint8
	maxMessage   int
	maxFragment  int
	maxFragments int

	// reassembly of a received batch
	rx       []byte
	rxTotal  int
	rxCount  int
	rxActive bool

	// a batch being sent in fragments
	tx    []byte
	txOff int
}

func newChannel(typ eap.Type, maxMessage, maxFragment, maxFragments int) (channel, error) {
	c := channel{typ: typ, maxMessage: maxMessage, maxFragment: maxFragment, maxFragments: maxFragments}
	switch typ {
	case eap.TypePTEAP:
		c.version = PTEAPVersion
	case eap.TypeTNC:
		c.version = TNCVersion
	default:
		return c, fmt.Errorf("%w: EAP type %s is neither PT-EAP nor EAP-TNC", ErrConfig, typ)
	}
	if c.maxMessage <= 0 {
		c.maxMessage = DefaultMaxMessage
	}
	if uint64(c.maxMessage) > math.MaxUint32 {
		c.maxMessage = math.MaxUint32
	}
	if typ == eap.TypePTEAP && c.maxMessage > maxPTEAPData {
		c.maxMessage = maxPTEAPData
	}
	if c.maxFragment <= 0 || c.maxFragment > DefaultMaxFragment {
		c.maxFragment = DefaultMaxFragment
	}
	if c.maxFragment < MinFragment {
		c.maxFragment = MinFragment
	}
	if c.maxFragments <= 0 {
		c.maxFragments = DefaultMaxFragments
	}
	return c, nil
}

// decode parses type-data into the common form (a PT-EAP packet becomes a
// TNCPacket without L and M). The version is not checked here.
func (c *channel) decode(data []byte) (TNCPacket, error) {
	if c.typ == eap.TypePTEAP {
		var p PTEAPPacket
		if err := p.UnmarshalBinary(data); err != nil {
			return TNCPacket{}, err
		}
		return TNCPacket{Start: p.Start, Version: p.Version, Data: p.Data}, nil
	}
	var p TNCPacket
	err := p.UnmarshalBinary(data)
	return p, err
}

// encode builds type-data of the channel's type.
func (c *channel) encode(p TNCPacket) []byte {
	var b []byte
	if c.typ == eap.TypePTEAP {
		pp := PTEAPPacket{Start: p.Start, Version: p.Version, Data: p.Data}
		b, _ = pp.AppendBinary(make([]byte, 0, pp.Len())) // the version always fits
	} else {
		b, _ = p.AppendBinary(make([]byte, 0, p.Len()))
	}
	return b
}

func (c *channel) checkVersion(p *TNCPacket) error {
	if p.Version != c.version {
		return &VersionError{Type: c.typ, Got: p.Version, Want: c.version}
	}
	return nil
}

// isAck reports whether p is an empty message: the acknowledgement of a
// fragment, or the answer of a side with nothing to send.
func isAck(p *TNCPacket) bool {
	return !p.Start && !p.More && !p.LengthIncluded && len(p.Data) == 0
}

// start is the type-data of the Start Request (S flag and version, no data).
func (c *channel) start() []byte { return c.encode(TNCPacket{Start: true, Version: c.version}) }

// ack is the type-data of an empty message.
func (c *channel) ack() []byte { return c.encode(TNCPacket{Version: c.version}) }

// receive takes one received packet that is not an acknowledgement of our
// own fragments. It returns the complete batch, or complete = false while an
// EAP-TNC batch is being reassembled (the caller answers with ack).
func (c *channel) receive(p *TNCPacket) (batch []byte, complete bool, err error) {
	n := len(p.Data)
	if c.typ == eap.TypePTEAP {
		if n > c.maxMessage {
			return nil, false, fmt.Errorf("%w: PT-EAP batch of %d octets, limit %d", ErrTooLarge, n, c.maxMessage)
		}
		return p.Data, true, nil
	}
	if !c.rxActive {
		if p.LengthIncluded && uint64(p.MessageLength) > uint64(c.maxMessage) {
			return nil, false, fmt.Errorf("%w: EAP-TNC message length %d, limit %d", ErrTooLarge, p.MessageLength, c.maxMessage)
		}
		if !p.More {
			if n > c.maxMessage {
				return nil, false, fmt.Errorf("%w: EAP-TNC batch of %d octets, limit %d", ErrTooLarge, n, c.maxMessage)
			}
			if p.LengthIncluded && int(p.MessageLength) != n {
				return nil, false, fmt.Errorf("%w: unfragmented message of %d octets with L = %d", ErrFragment, n, p.MessageLength)
			}
			return p.Data, true, nil
		}
		if !p.LengthIncluded {
			return nil, false, fmt.Errorf("%w: first fragment without L", ErrFragment)
		}
		total := int(p.MessageLength) // <= maxMessage, checked above
		if n == 0 {
			return nil, false, fmt.Errorf("%w: empty fragment", ErrFragment)
		}
		if n >= total {
			return nil, false, fmt.Errorf("%w: first fragment of %d octets with M set and L = %d", ErrFragment, n, total)
		}
		c.rxActive, c.rxTotal, c.rxCount = true, total, 1
		c.rx = make([]byte, 0, min(total, 1<<16))
		c.rx = append(c.rx, p.Data...)
		return nil, false, nil
	}
	c.rxCount++
	if c.rxCount > c.maxFragments {
		return nil, false, fmt.Errorf("%w: more than %d", ErrTooManyFragments, c.maxFragments)
	}
	if p.Start {
		return nil, false, fmt.Errorf("%w: S flag in a fragment", ErrProtocol)
	}
	if p.LengthIncluded && int64(p.MessageLength) != int64(c.rxTotal) {
		return nil, false, fmt.Errorf("%w: L changed from %d to %d", ErrFragment, c.rxTotal, p.MessageLength)
	}
	if n > c.rxTotal-len(c.rx) {
		return nil, false, fmt.Errorf("%w: %d octets beyond L = %d", ErrFragment, len(c.rx)+n-c.rxTotal, c.rxTotal)
	}
	c.rx = append(c.rx, p.Data...)
	if p.More {
		if n == 0 {
			return nil, false, fmt.Errorf("%w: empty fragment", ErrFragment)
		}
		if len(c.rx) == c.rxTotal {
			return nil, false, fmt.Errorf("%w: M set after all %d octets of L", ErrFragment, c.rxTotal)
		}
		return nil, false, nil
	}
	if len(c.rx) != c.rxTotal {
		return nil, false, fmt.Errorf("%w: message of %d octets ends before L = %d", ErrFragment, len(c.rx), c.rxTotal)
	}
	batch = c.rx
	c.rx, c.rxActive, c.rxTotal, c.rxCount = nil, false, 0, 0
	return batch, true, nil
}

// sending reports whether fragments of a sent batch are still to go out;
// the next packet received must then be an acknowledgement.
func (c *channel) sending() bool { return c.tx != nil }

// send returns the type-data of the first packet carrying batch; further
// fragments follow from next.
func (c *channel) send(batch []byte) ([]byte, error) {
	if len(batch) > c.maxMessage {
		return nil, fmt.Errorf("%w: batch to send of %d octets, limit %d", ErrTooLarge, len(batch), c.maxMessage)
	}
	if c.typ == eap.TypePTEAP || 1+len(batch) <= c.maxFragment {
		return c.encode(TNCPacket{Version: c.version, Data: batch}), nil
	}
	n := c.maxFragment - 5
	c.tx, c.txOff = batch, n
	return c.encode(TNCPacket{LengthIncluded: true, More: true, Version: c.version,
		MessageLength: uint32(len(batch)), Data: batch[:n]}), nil
}

// next returns the type-data of the next fragment of the batch being sent.
func (c *channel) next() []byte {
	n := min(c.maxFragment-1, len(c.tx)-c.txOff)
	p := TNCPacket{Version: c.version, Data: c.tx[c.txOff : c.txOff+n]}
	c.txOff += n
	if c.txOff < len(c.tx) {
		p.More = true
	} else {
		c.tx, c.txOff = nil, 0
	}
	return c.encode(p)
}
