package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Netlink numbers from linux/rtnetlink.h and linux/if_link.h (UAPI), used by the bridge port
// codec below. They are written out here so the codec is pure and self-contained.
const (
	ifinfomsgLen = 16 // struct ifinfomsg
	nlaHdrLen    = 4  // struct nlattr
	nlaTypeMask  = 0x3fff
	nlaFNested   = 0x8000

	iflaIfname   = 3  // IFLA_IFNAME
	iflaMaster   = 10 // IFLA_MASTER
	iflaProtinfo = 12 // IFLA_PROTINFO (nested IFLA_BRPORT_* for AF_BRIDGE)

	brportLearning = 8  // IFLA_BRPORT_LEARNING
	brportLocked   = 39 // IFLA_BRPORT_LOCKED (kernel ≥ 5.18)
	brportMAB      = 40 // IFLA_BRPORT_MAB (kernel ≥ 6.2)

	ifNameSize = 16 // IFNAMSIZ, including the terminating NUL

	// maxPortAttrs caps the attributes walked in one message, against hostile lengths.
	maxPortAttrs = 512
)

// errPortMsg is wrapped by every decoding failure of a bridge port message.
var errPortMsg = errors.New("malformed bridge port message")

// portInfo is what the enforcer needs from an RTM_NEWLINK message of family AF_BRIDGE (the
// answer to `bridge link show`): the port, its bridge and its 802.1X-related flags.
type portInfo struct {
	Index    int32
	Name     string
	Master   uint32
	Learning bool
	Locked   bool
	MAB      bool
	// HasProtinfo tells whether the message carried IFLA_PROTINFO at all.
	HasProtinfo bool
}

// appendBinary encodes p as an ifinfomsg of family AF_BRIDGE followed by IFLA_IFNAME,
// IFLA_MASTER and a nested IFLA_PROTINFO with the learning, locked and mab flags, in host byte
// order as netlink uses.
func (p portInfo) appendBinary(b []byte) ([]byte, error) {
	if len(p.Name) >= ifNameSize {
		return b, fmt.Errorf("bridge: port name %q too long", p.Name)
	}
	var hdr [ifinfomsgLen]byte
	hdr[0] = 7 // AF_BRIDGE
	binary.NativeEndian.PutUint32(hdr[4:8], uint32(p.Index))
	b = append(b, hdr[:]...)
	b = appendAttr(b, iflaIfname, append([]byte(p.Name), 0))
	b = appendAttr(b, iflaMaster, binary.NativeEndian.AppendUint32(nil, p.Master))
	if p.HasProtinfo {
		var nested []byte
		nested = appendAttr(nested, brportLearning, []byte{boolByte(p.Learning)})
		nested = appendAttr(nested, brportLocked, []byte{boolByte(p.Locked)})
		nested = appendAttr(nested, brportMAB, []byte{boolByte(p.MAB)})
		b = appendAttr(b, iflaProtinfo|nlaFNested, nested)
	}
	return b, nil
}

// unmarshalBinary decodes an RTM_NEWLINK payload (ifinfomsg and attributes, without the netlink
// header). Attributes it does not need are skipped; every length is checked against the buffer.
func (p *portInfo) unmarshalBinary(b []byte) error {
	*p = portInfo{}
	if len(b) < ifinfomsgLen {
		return fmt.Errorf("bridge: %w: %d bytes, ifinfomsg needs %d", errPortMsg, len(b), ifinfomsgLen)
	}
	p.Index = int32(binary.NativeEndian.Uint32(b[4:8]))
	return walkAttrs(b[ifinfomsgLen:], func(typ uint16, val []byte) error {
		switch typ {
		case iflaIfname:
			n := len(val)
			for i, c := range val {
				if c == 0 {
					n = i
					break
				}
			}
			if n >= ifNameSize {
				return fmt.Errorf("bridge: %w: IFLA_IFNAME of %d bytes", errPortMsg, n)
			}
			p.Name = string(val[:n]) // string() copies out of the buffer
		case iflaMaster:
			if len(val) != 4 {
				return fmt.Errorf("bridge: %w: IFLA_MASTER of %d bytes", errPortMsg, len(val))
			}
			p.Master = binary.NativeEndian.Uint32(val)
		case iflaProtinfo:
			p.HasProtinfo = true
			return walkAttrs(val, func(typ uint16, val []byte) error {
				var dst *bool
				switch typ {
				case brportLearning:
					dst = &p.Learning
				case brportLocked:
					dst = &p.Locked
				case brportMAB:
					dst = &p.MAB
				default:
					return nil
				}
				if len(val) != 1 {
					return fmt.Errorf("bridge: %w: port flag %d of %d bytes", errPortMsg, typ, len(val))
				}
				*dst = val[0] != 0
				return nil
			})
		}
		return nil
	})
}

// walkAttrs calls f for each netlink attribute in b (type without the NLA_F_* bits). It rejects
// attributes whose length lies about the buffer and stops after maxPortAttrs attributes.
func walkAttrs(b []byte, f func(typ uint16, val []byte) error) error {
	for n := 0; len(b) > 0; n++ {
		if n == maxPortAttrs {
			return fmt.Errorf("bridge: %w: more than %d attributes", errPortMsg, maxPortAttrs)
		}
		if len(b) < nlaHdrLen {
			return fmt.Errorf("bridge: %w: %d trailing bytes", errPortMsg, len(b))
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) & nlaTypeMask
		if l < nlaHdrLen || l > len(b) {
			return fmt.Errorf("bridge: %w: attribute length %d with %d bytes left", errPortMsg, l, len(b))
		}
		if err := f(typ, b[nlaHdrLen:l]); err != nil {
			return err
		}
		aligned := (l + 3) &^ 3
		if aligned > len(b) {
			aligned = len(b) // the last attribute may omit its padding
		}
		b = b[aligned:]
	}
	return nil
}

// appendAttr appends one netlink attribute with its padding.
func appendAttr(b []byte, typ uint16, val []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
