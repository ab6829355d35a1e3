package patnc

import (
	"encoding/binary"
	"unicode/utf8"
)

// Remediation Instructions (RFC 5792 §4.2.10): reserved 8, remediation
// parameters vendor 24, remediation parameters type 32, then the
// parameters. IETF type RemediationURI carries the URI bytes; IETF type
// RemediationString carries a 32-bit string length, the UTF-8 string, an
// 8-bit language tag length and the language tag (RFC 5646).
const remediationFixedLen = 8

// AttrID returns IETF type 10.
func (RemediationInstructions) AttrID() AttrID { return ietf(AttrRemediationInstructions) }

// AppendBinary appends the Remediation Instructions value (RFC 5792
// §4.2.10). For IETF RemediationURI the URI must be non-empty printable
// ASCII (RFC 3986); for IETF RemediationString the text must be UTF-8 and
// the language tag printable ASCII of at most 255 bytes; anything else
// travels as Raw.
func (r RemediationInstructions) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	b, err := appendVendor(b, r.Vendor, "remediation parameters")
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, r.Type)
	switch {
	case r.Vendor == VendorIETF && r.Type == RemediationURI:
		if len(r.URI) == 0 || !printableASCII(r.URI) {
			return b[:orig], invalid("remediation URI %q is not a URI", r.URI)
		}
		if uint64(len(r.URI)) > maxValueLen-remediationFixedLen {
			return b[:orig], invalid("remediation URI of %d bytes is too long", len(r.URI))
		}
		return append(b, r.URI...), nil
	case r.Vendor == VendorIETF && r.Type == RemediationString:
		if !utf8.ValidString(r.Text) {
			return b[:orig], invalid("remediation string is not UTF-8")
		}
		if uint64(len(r.Text)) > maxValueLen-remediationFixedLen-5-uint64(len(r.Lang)) {
			return b[:orig], invalid("remediation string of %d bytes is too long", len(r.Text))
		}
		if len(r.Lang) > 255 || (len(r.Lang) > 0 && !printableASCII(r.Lang)) {
			return b[:orig], invalid("remediation language tag %q is not a language tag", r.Lang)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Text)))
		b = append(b, r.Text...)
		b = append(b, byte(len(r.Lang)))
		return append(b, r.Lang...), nil
	default:
		if uint64(len(r.Raw)) > maxValueLen-remediationFixedLen {
			return b[:orig], invalid("remediation parameters of %d bytes are too long", len(r.Raw))
		}
		return append(b, r.Raw...), nil
	}
}

// UnmarshalBinary decodes Remediation Instructions (RFC 5792 §4.2.10). IETF
// URI and String parameters are checked and decoded into URI or Text and
// Lang; other parameters are copied into Raw (nil when empty).
func (r *RemediationInstructions) UnmarshalBinary(b []byte) error {
	if len(b) < remediationFixedLen {
		return malformed(0, "remediation instructions of %d bytes are shorter than %d", len(b), remediationFixedLen)
	}
	out := RemediationInstructions{Vendor: vendor24(b[1:]), Type: binary.BigEndian.Uint32(b[4:])}
	p := b[remediationFixedLen:]
	const base = remediationFixedLen
	switch {
	case out.Vendor == VendorIETF && out.Type == RemediationURI:
		if len(p) == 0 || !printableASCII(string(p)) {
			return malformed(base, "remediation URI is empty or not printable ASCII")
		}
		out.URI = string(p)
	case out.Vendor == VendorIETF && out.Type == RemediationString:
		// A 32-bit string length, the string, an 8-bit language tag length.
		if len(p) < 5 {
			return malformed(base, "remediation string parameters of %d bytes are shorter than 5", len(p))
		}
		n := uint64(binary.BigEndian.Uint32(p))
		if n > uint64(len(p)-5) {
			return malformed(base, "remediation string length %d exceeds the %d bytes left", n, len(p)-5)
		}
		text := p[4 : 4+n]
		if !utf8.Valid(text) {
			return malformed(base+4, "remediation string is not UTF-8")
		}
		off := 4 + int(n)
		ln := int(p[off])
		if ln != len(p)-off-1 {
			return malformed(base+off, "remediation language tag length %d does not match the %d bytes left", ln, len(p)-off-1)
		}
		lang := p[off+1:]
		if len(lang) > 0 && !printableASCII(string(lang)) {
			return malformed(base+off+1, "remediation language tag is not printable ASCII")
		}
		out.Text, out.Lang = string(text), string(lang)
	default:
		if len(p) > 0 {
			out.Raw = append([]byte(nil), p...)
		}
	}
	*r = out
	return nil
}

// printableASCII reports whether s holds only the octets 0x21–0x7e, the
// characters URIs (RFC 3986) and language tags (RFC 5646) are made of.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
