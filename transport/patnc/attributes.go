package patnc

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"
)

// The IETF standard attribute values of RFC 5792 §4.2.1–§4.2.12 (the PA-TNC
// Error attribute is in paerror.go, Remediation Instructions in
// remediation.go). Each type implements Value through a pointer:
// AttrID and AppendBinary have value receivers, UnmarshalBinary a pointer
// receiver, so pass &v to EncodeAttribute. UnmarshalBinary errors are
// *ParseError with Offset counted from the start of the value.

func ietf(t uint32) AttrID { return AttrID{Vendor: VendorIETF, Type: t} }

// wantLen checks a fixed-size value.
func wantLen(b []byte, n int, what string) error {
	if len(b) != n {
		return malformed(0, "%s value is %d bytes, want %d", what, len(b), n)
	}
	return nil
}

// appendVendor appends a 24-bit vendor ID after a reserved octet.
func appendVendor(b []byte, vendor uint32, what string) ([]byte, error) {
	if vendor > MaxVendorID {
		return b, invalid("%s vendor %#x exceeds 24 bits", what, vendor)
	}
	return append(b, 0, byte(vendor>>16), byte(vendor>>8), byte(vendor)), nil
}

func vendor24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// ---- Attribute Request (RFC 5792 §4.2.1) ----

// attrRequestEntryLen is one entry: reserved 8, vendor 24, type 32.
const attrRequestEntryLen = 8

// AttrID returns IETF type 1.
func (AttributeRequest) AttrID() AttrID { return ietf(AttrAttributeRequest) }

// AppendBinary appends the entries (RFC 5792 §4.2.1): each a reserved
// octet, a 24-bit vendor ID and a 32-bit attribute type.
func (r AttributeRequest) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	if uint64(len(r))*attrRequestEntryLen > maxValueLen {
		return b, invalid("attribute request with %d entries is too long", len(r))
	}
	for _, id := range r {
		var err error
		if b, err = appendVendor(b, id.Vendor, "attribute request"); err != nil {
			return b[:orig], err
		}
		b = binary.BigEndian.AppendUint32(b, id.Type)
	}
	return b, nil
}

// UnmarshalBinary decodes the entries (RFC 5792 §4.2.1). An empty value
// decodes to a nil request.
func (r *AttributeRequest) UnmarshalBinary(b []byte) error {
	if len(b)%attrRequestEntryLen != 0 {
		return malformed(len(b)-len(b)%attrRequestEntryLen,
			"attribute request of %d bytes is not a whole number of %d-byte entries", len(b), attrRequestEntryLen)
	}
	var out AttributeRequest
	if len(b) > 0 {
		out = make(AttributeRequest, 0, len(b)/attrRequestEntryLen)
	}
	for off := 0; off < len(b); off += attrRequestEntryLen {
		out = append(out, AttrID{
			Vendor: vendor24(b[off+1:]),
			Type:   binary.BigEndian.Uint32(b[off+4:]),
		})
	}
	*r = out
	return nil
}

// ---- Product Information (RFC 5792 §4.2.2) ----

const productInfoFixedLen = 5 // vendor 24, product ID 16

// AttrID returns IETF type 2.
func (ProductInformation) AttrID() AttrID { return ietf(AttrProductInformation) }

// AppendBinary appends the 24-bit product vendor ID, the 16-bit product ID
// and the UTF-8 product name (RFC 5792 §4.2.2).
func (p ProductInformation) AppendBinary(b []byte) ([]byte, error) {
	if p.VendorID > MaxVendorID {
		return b, invalid("product vendor %#x exceeds 24 bits", p.VendorID)
	}
	if !utf8.ValidString(p.Name) {
		return b, invalid("product name is not UTF-8")
	}
	if uint64(len(p.Name)) > maxValueLen-productInfoFixedLen {
		return b, invalid("product name of %d bytes is too long", len(p.Name))
	}
	b = append(b, byte(p.VendorID>>16), byte(p.VendorID>>8), byte(p.VendorID))
	b = binary.BigEndian.AppendUint16(b, p.ProductID)
	return append(b, p.Name...), nil
}

// UnmarshalBinary decodes Product Information (RFC 5792 §4.2.2).
func (p *ProductInformation) UnmarshalBinary(b []byte) error {
	if len(b) < productInfoFixedLen {
		return malformed(0, "product information of %d bytes is shorter than %d", len(b), productInfoFixedLen)
	}
	name := b[productInfoFixedLen:]
	if !utf8.Valid(name) {
		return malformed(productInfoFixedLen, "product name is not UTF-8")
	}
	*p = ProductInformation{
		VendorID:  vendor24(b),
		ProductID: binary.BigEndian.Uint16(b[3:]),
		Name:      string(name),
	}
	return nil
}

// ---- Numeric Version (RFC 5792 §4.2.3) ----

const numericVersionLen = 16

// AttrID returns IETF type 3.
func (NumericVersion) AttrID() AttrID { return ietf(AttrNumericVersion) }

// AppendBinary appends the 16-byte value (RFC 5792 §4.2.3): major, minor and
// build numbers (32 bits each), service pack major and minor (16 bits each).
func (v NumericVersion) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, v.Major)
	b = binary.BigEndian.AppendUint32(b, v.Minor)
	b = binary.BigEndian.AppendUint32(b, v.Build)
	b = binary.BigEndian.AppendUint16(b, v.ServicePackMajor)
	return binary.BigEndian.AppendUint16(b, v.ServicePackMinor), nil
}

// UnmarshalBinary decodes a Numeric Version (RFC 5792 §4.2.3).
func (v *NumericVersion) UnmarshalBinary(b []byte) error {
	if err := wantLen(b, numericVersionLen, "numeric version"); err != nil {
		return err
	}
	*v = NumericVersion{
		Major:            binary.BigEndian.Uint32(b[0:]),
		Minor:            binary.BigEndian.Uint32(b[4:]),
		Build:            binary.BigEndian.Uint32(b[8:]),
		ServicePackMajor: binary.BigEndian.Uint16(b[12:]),
		ServicePackMinor: binary.BigEndian.Uint16(b[14:]),
	}
	return nil
}

// ---- String Version (RFC 5792 §4.2.4) ----

// AttrID returns IETF type 4.
func (StringVersion) AttrID() AttrID { return ietf(AttrStringVersion) }

// AppendBinary appends the product version number, the internal build
// number and the configuration version number, each as a 1-byte length and
// UTF-8 bytes (RFC 5792 §4.2.4).
func (v StringVersion) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	for _, f := range [...]struct{ name, s string }{
		{"version", v.Version}, {"build", v.Build}, {"configuration", v.Config},
	} {
		var err error
		if b, err = appendString8(b, f.s, "string version "+f.name); err != nil {
			return b[:orig], err
		}
	}
	return b, nil
}

// UnmarshalBinary decodes a String Version (RFC 5792 §4.2.4); the three
// strings must fill the value exactly.
func (v *StringVersion) UnmarshalBinary(b []byte) error {
	var out StringVersion
	off := 0
	for _, dst := range [...]*string{&out.Version, &out.Build, &out.Config} {
		s, next, err := readString8(b, off, "string version")
		if err != nil {
			return err
		}
		*dst, off = s, next
	}
	if off != len(b) {
		return malformed(off, "%d trailing bytes after string version", len(b)-off)
	}
	*v = out
	return nil
}

// appendString8 appends a 1-byte length and a UTF-8 string of at most 255
// bytes.
func appendString8(b []byte, s, what string) ([]byte, error) {
	if len(s) > 255 {
		return b, invalid("%s of %d bytes exceeds 255", what, len(s))
	}
	if !utf8.ValidString(s) {
		return b, invalid("%s is not UTF-8", what)
	}
	b = append(b, byte(len(s)))
	return append(b, s...), nil
}

// readString8 reads a 1-byte length and that many UTF-8 bytes at off.
func readString8(b []byte, off int, what string) (string, int, error) {
	if off >= len(b) {
		return "", off, malformed(off, "%s: length octet missing", what)
	}
	n := int(b[off])
	if n > len(b)-off-1 {
		return "", off, malformed(off, "%s: length %d exceeds the %d bytes left", what, n, len(b)-off-1)
	}
	s := b[off+1 : off+1+n]
	if !utf8.Valid(s) {
		return "", off, malformed(off+1, "%s is not UTF-8", what)
	}
	return string(s), off + 1 + n, nil
}

// ---- Forwarding Enabled, Factory Default Password Enabled, Assessment
// Result (RFC 5792 §4.2.9, §4.2.11, §4.2.12) ----

// appendEnum32 appends a 32-bit enumeration after checking its range.
func appendEnum32(b []byte, v, max uint32, what string) ([]byte, error) {
	if v > max {
		return b, invalid("%s %d is not defined (0–%d)", what, v, max)
	}
	return binary.BigEndian.AppendUint32(b, v), nil
}

// readEnum32 reads a 4-byte value holding a 32-bit enumeration of 0–max.
func readEnum32(b []byte, max uint32, what string) (uint32, error) {
	if err := wantLen(b, 4, what); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(b)
	if v > max {
		return 0, malformed(0, "%s %d is not defined (0–%d)", what, v, max)
	}
	return v, nil
}

// AttrID returns IETF type 9.
func (AssessmentResult) AttrID() AttrID { return ietf(AttrAssessmentResult) }

// AppendBinary appends the 32-bit assessment result (RFC 5792 §4.2.9),
// one of AssessmentCompliant … AssessmentDontKnow.
func (r AssessmentResult) AppendBinary(b []byte) ([]byte, error) {
	return appendEnum32(b, uint32(r), AssessmentDontKnow, "assessment result")
}

// UnmarshalBinary decodes an Assessment Result (RFC 5792 §4.2.9).
func (r *AssessmentResult) UnmarshalBinary(b []byte) error {
	v, err := readEnum32(b, AssessmentDontKnow, "assessment result")
	if err == nil {
		*r = AssessmentResult(v)
	}
	return err
}

// AttrID returns IETF type 11.
func (ForwardingEnabled) AttrID() AttrID { return ietf(AttrForwardingEnabled) }

// AppendBinary appends the 32-bit forwarding status (RFC 5792 §4.2.11):
// ForwardingDisabled, ForwardingEnabled or ForwardingUnknown.
func (f ForwardingEnabled) AppendBinary(b []byte) ([]byte, error) {
	return appendEnum32(b, uint32(f), ForwardingUnknown, "forwarding enabled")
}

// UnmarshalBinary decodes Forwarding Enabled (RFC 5792 §4.2.11).
func (f *ForwardingEnabled) UnmarshalBinary(b []byte) error {
	v, err := readEnum32(b, ForwardingUnknown, "forwarding enabled")
	if err == nil {
		*f = ForwardingEnabled(v)
	}
	return err
}

// AttrID returns IETF type 12.
func (FactoryDefaultPasswordEnabled) AttrID() AttrID {
	return ietf(AttrFactoryDefaultPasswordEnabled)
}

// AppendBinary appends the 32-bit value (RFC 5792 §4.2.12): 0 no factory
// default password is enabled, 1 one is.
func (f FactoryDefaultPasswordEnabled) AppendBinary(b []byte) ([]byte, error) {
	return appendEnum32(b, uint32(f), 1, "factory default password enabled")
}

// UnmarshalBinary decodes Factory Default Password Enabled (RFC 5792
// §4.2.12).
func (f *FactoryDefaultPasswordEnabled) UnmarshalBinary(b []byte) error {
	v, err := readEnum32(b, 1, "factory default password enabled")
	if err == nil {
		*f = FactoryDefaultPasswordEnabled(v)
	}
	return err
}

// ---- Port Filter (RFC 5792 §4.2.6) ----

const portFilterEntryLen = 4 // reserved 7 bits + B, protocol 8, port 16

// AttrID returns IETF type 6.
func (PortFilter) AttrID() AttrID { return ietf(AttrPortFilter) }

// AppendBinary appends the entries (RFC 5792 §4.2.6): 7 reserved bits and
// the B (blocked) bit, the 8-bit protocol, the 16-bit port.
func (p PortFilter) AppendBinary(b []byte) ([]byte, error) {
	if uint64(len(p))*portFilterEntryLen > maxValueLen {
		return b, invalid("port filter with %d entries is too long", len(p))
	}
	for _, e := range p {
		var flags byte
		if e.Blocked {
			flags = 1
		}
		b = append(b, flags, e.Protocol)
		b = binary.BigEndian.AppendUint16(b, e.Port)
	}
	return b, nil
}

// UnmarshalBinary decodes the entries (RFC 5792 §4.2.6); reserved bits are
// ignored. An empty value decodes to a nil filter.
func (p *PortFilter) UnmarshalBinary(b []byte) error {
	if len(b)%portFilterEntryLen != 0 {
		return malformed(len(b)-len(b)%portFilterEntryLen,
			"port filter of %d bytes is not a whole number of %d-byte entries", len(b), portFilterEntryLen)
	}
	var out PortFilter
	if len(b) > 0 {
		out = make(PortFilter, 0, len(b)/portFilterEntryLen)
	}
	for off := 0; off < len(b); off += portFilterEntryLen {
		out = append(out, PortFilterEntry{
			Blocked:  b[off]&1 != 0,
			Protocol: b[off+1],
			Port:     binary.BigEndian.Uint16(b[off+2:]),
		})
	}
	*p = out
	return nil
}

// ---- Installed Packages (RFC 5792 §4.2.7) ----

const installedPackagesFixedLen = 4 // reserved 16, count 16

// MaxInstalledPackages is the most packages the 16-bit count of RFC 5792
// §4.2.7 can list.
const MaxInstalledPackages = 0xffff

// AttrID returns IETF type 7.
func (InstalledPackages) AttrID() AttrID { return ietf(AttrInstalledPackages) }

// AppendBinary appends 16 reserved bits, the 16-bit package count and, for
// each package, the 1-byte-length-prefixed UTF-8 name and version (RFC 5792
// §4.2.7).
func (p InstalledPackages) AppendBinary(b []byte) ([]byte, error) {
	if len(p) > MaxInstalledPackages {
		return b, invalid("%d installed packages exceed %d", len(p), MaxInstalledPackages)
	}
	orig := len(b)
	n := installedPackagesFixedLen
	for _, pkg := range p {
		n += 2 + min(len(pkg.Name), 255) + min(len(pkg.Version), 255)
	}
	b = slices.Grow(b, n)
	b = append(b, 0, 0, byte(len(p)>>8), byte(len(p)))
	for i, pkg := range p {
		var err error
		if b, err = appendString8(b, pkg.Name, "package name"); err != nil {
			return b[:orig], fmtIndex(err, i)
		}
		if b, err = appendString8(b, pkg.Version, "package version"); err != nil {
			return b[:orig], fmtIndex(err, i)
		}
	}
	return b, nil
}

// UnmarshalBinary decodes Installed Packages (RFC 5792 §4.2.7): exactly the
// counted packages must fill the value. An empty list decodes to nil.
func (p *InstalledPackages) UnmarshalBinary(b []byte) error {
	if len(b) < installedPackagesFixedLen {
		return malformed(0, "installed packages of %d bytes is shorter than %d", len(b), installedPackagesFixedLen)
	}
	count := int(binary.BigEndian.Uint16(b[2:]))
	// Every package takes at least its two length octets: reject a count
	// the bytes cannot hold before allocating for it.
	if count > (len(b)-installedPackagesFixedLen)/2 {
		return malformed(2, "package count %d exceeds what %d bytes can hold", count, len(b)-installedPackagesFixedLen)
	}
	var out InstalledPackages
	if count > 0 {
		out = make(InstalledPackages, 0, count)
	}
	// One string for all names and versions; each field is a substring.
	all := string(b)
	off := installedPackagesFixedLen
	for range count {
		var name, version string
		var err error
		if name, off, err = substring8(all, off, "package name"); err != nil {
			return err
		}
		if version, off, err = substring8(all, off, "package version"); err != nil {
			return err
		}
		out = append(out, Package{Name: name, Version: version})
	}
	if off != len(b) {
		return malformed(off, "%d trailing bytes after %d packages", len(b)-off, count)
	}
	*p = out
	return nil
}

// substring8 is readString8 over a string, returning a substring.
func substring8(s string, off int, what string) (string, int, error) {
	if off >= len(s) {
		return "", off, malformed(off, "%s: length octet missing", what)
	}
	n := int(s[off])
	if n > len(s)-off-1 {
		return "", off, malformed(off, "%s: length %d exceeds the %d bytes left", what, n, len(s)-off-1)
	}
	v := s[off+1 : off+1+n]
	if !utf8.ValidString(v) {
		return "", off, malformed(off+1, "%s is not UTF-8", what)
	}
	return v, off + 1 + n, nil
}

// fmtIndex notes which list element an encoding error is about.
func fmtIndex(err error, i int) error { return fmt.Errorf("%w (package %d)", err, i) }
