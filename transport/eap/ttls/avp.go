package ttls

import (
	"encoding/binary"
	"fmt"
)

// AVP codes trustnac uses. EAP-TTLS AVPs take their codes from the RADIUS attribute numbers
// (RFC 5281 §10.1, IANA "RADIUS Attribute Types").
const (
	AVPUserName     uint32 = 1  // User-Name (RFC 2865 §5.1), with PAP (RFC 5281 §11.2.5)
	AVPUserPassword uint32 = 2  // User-Password, in the clear inside the tunnel (RFC 5281 §11.2.5)
	AVPReplyMessage uint32 = 18 // Reply-Message (RFC 2865 §5.18)
	AVPEAPMessage   uint32 = 79 // EAP-Message (RFC 3579 §3.1), inner EAP (RFC 5281 §11.2.1)
)

// AVP limits.
const (
	// MaxAVPs caps the number of AVPs ParseAVPs accepts in one tunnel message.
	MaxAVPs = 256
	// MaxAVPData is the most Data an AVP with a Vendor-ID can carry: the AVP Length field is
	// 24 bits and counts the 12-byte header (RFC 5281 §10.1).
	MaxAVPData = 1<<24 - 1 - avpVendorHeaderLen
)

const (
	avpFlagVendor      = 0x80 // V: Vendor-ID present (RFC 5281 §10.2)
	avpFlagMandatory   = 0x40 // M: the receiver must understand the AVP (RFC 5281 §10.1)
	avpHeaderLen       = 8
	avpVendorHeaderLen = 12
)

// AVP is one attribute-value pair in the Diameter format EAP-TTLS uses inside the tunnel
// (RFC 5281 §10.1):
//
//	AVP Code (32) | V M r r r r r r | AVP Length (24) | [Vendor-ID (32)] | Data | padding to 4
//
// The V flag is set exactly when Vendor is not 0. The reserved flag bits are sent as zero and
// ignored on receipt.
type AVP struct {
	Code      uint32
	Vendor    uint32 // Vendor-ID; 0 means none (no V flag)
	Mandatory bool   // the M flag
	Data      []byte
}

func (a *AVP) headerLen() int {
	if a.Vendor != 0 {
		return avpVendorHeaderLen
	}
	return avpHeaderLen
}

// Len is the value of the AVP Length field: header and Data, without the padding.
func (a *AVP) Len() int { return a.headerLen() + len(a.Data) }

// AppendBinary appends the encoded AVP, padded to a multiple of 4 bytes (RFC 5281 §10.1). It
// fails only when Data does not fit the 24-bit AVP Length.
func (a *AVP) AppendBinary(b []byte) ([]byte, error) {
	n := a.Len()
	if n > 1<<24-1 {
		return b, fmt.Errorf("ttls: AVP %d with %d bytes of data exceeds the 24-bit AVP Length", a.Code, len(a.Data))
	}
	var flags byte
	if a.Vendor != 0 {
		flags |= avpFlagVendor
	}
	if a.Mandatory {
		flags |= avpFlagMandatory
	}
	b = binary.BigEndian.AppendUint32(b, a.Code)
	b = binary.BigEndian.AppendUint32(b, uint32(flags)<<24|uint32(n))
	if a.Vendor != 0 {
		b = binary.BigEndian.AppendUint32(b, a.Vendor)
	}
	b = append(b, a.Data...)
	for range pad4(n) {
		b = append(b, 0)
	}
	return b, nil
}

// AppendAVPs appends the encoded AVPs, each padded to 4 bytes (RFC 5281 §10.1). An AVP too long
// for the 24-bit AVP Length (Data of up to MaxAVPData bytes always fits) cannot be encoded and
// is left out; callers that cannot rule that out use AVP.AppendBinary, which reports it.
func AppendAVPs(b []byte, avps ...AVP) []byte {
	for i := range avps {
		if nb, err := avps[i].AppendBinary(b); err == nil {
			b = nb
		}
	}
	return b
}

// ParseAVPs decodes the AVPs of one tunnel message (RFC 5281 §10.1). Every AVP Length is
// checked against the bytes present, at most MaxAVPs AVPs are accepted, and Data is copied out
// of b. The padding after the last AVP may be missing. An empty b gives no AVPs.
func ParseAVPs(b []byte) ([]AVP, error) {
	var avps []AVP
	for off := 0; off < len(b); {
		if len(avps) == MaxAVPs {
			return nil, fmt.Errorf("%w: more than %d AVPs", ErrMalformed, MaxAVPs)
		}
		rest := b[off:]
		if len(rest) < avpHeaderLen {
			return nil, fmt.Errorf("%w: %d trailing bytes at offset %d, short of an AVP header", ErrMalformed, len(rest), off)
		}
		code := binary.BigEndian.Uint32(rest)
		flags := rest[4]
		n := int(binary.BigEndian.Uint32(rest[4:]) & 0xffffff)
		hdr := avpHeaderLen
		var vendor uint32
		if flags&avpFlagVendor != 0 {
			hdr = avpVendorHeaderLen
			if len(rest) < hdr {
				return nil, fmt.Errorf("%w: AVP %d at offset %d: V flag set, %d bytes left for a %d-byte header", ErrMalformed, code, off, len(rest), hdr)
			}
			vendor = binary.BigEndian.Uint32(rest[8:])
		}
		if n < hdr || n > len(rest) {
			return nil, fmt.Errorf("%w: AVP %d at offset %d: AVP Length %d with a %d-byte header and %d bytes left", ErrMalformed, code, off, n, hdr, len(rest))
		}
		if avps == nil {
			avps = make([]AVP, 0, min(len(b)/avpHeaderLen, MaxAVPs))
		}
		avps = append(avps, AVP{
			Code:      code,
			Vendor:    vendor,
			Mandatory: flags&avpFlagMandatory != 0,
			Data:      append([]byte(nil), rest[hdr:n]...),
		})
		off += min(n+pad4(n), len(rest))
	}
	return avps, nil
}

func pad4(n int) int { return (4 - n%4) % 4 }

// findAVP returns the first AVP with the code and vendor.
func findAVP(avps []AVP, code, vendor uint32) (AVP, bool) {
	for _, a := range avps {
		if a.Code == code && a.Vendor == vendor {
			return a, true
		}
	}
	return AVP{}, false
}

// CheckMandatory returns an *UnsupportedAVPError for the first AVP with the M bit set that known
// does not accept: RFC 5281 §10.1 makes the receiver fail the negotiation on such an AVP.
// AVPs without the M bit that are not known may be ignored.
func CheckMandatory(avps []AVP, known func(code, vendor uint32) bool) error {
	for _, a := range avps {
		if a.Mandatory && !known(a.Code, a.Vendor) {
			return &UnsupportedAVPError{Code: a.Code, Vendor: a.Vendor}
		}
	}
	return nil
}
