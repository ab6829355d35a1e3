package patnc

import "fmt"

// EncodeAttribute encodes a typed value as an attribute (RFC 5792 §4.2)
// with the value's vendor and type and the NOSKIP flag as given. Values
// are passed by pointer (e.g. &ProductInformation{...}).
func EncodeAttribute(v Value, noSkip bool) (Attribute, error) {
	if v == nil {
		return Attribute{}, invalid("nil value")
	}
	id := v.AttrID()
	if id.Vendor > MaxVendorID {
		return Attribute{}, invalid("attribute vendor %#x exceeds 24 bits", id.Vendor)
	}
	b, err := v.AppendBinary(nil)
	if err != nil {
		return Attribute{}, fmt.Errorf("patnc: encode attribute %v: %w", id, err)
	}
	if uint64(len(b)) > maxValueLen {
		return Attribute{}, invalid("attribute %v value of %d bytes is too long", id, len(b))
	}
	if len(b) == 0 {
		b = nil
	}
	return Attribute{NoSkip: noSkip, Vendor: id.Vendor, Type: id.Type, Value: b}, nil
}

// NewValue returns a new zero typed value for the IETF standard attribute
// types 1–12 (RFC 5792 §4.2.1–§4.2.12) and trustnac's TPM evidence types
// 1–7 (vendor VendorTrustnac, trustnac.go), or nil for any other type. For
// AttrTPMAK and AttrTPMEK it is a *TPMKey of that kind.
func NewValue(id AttrID) Value {
	switch id.Vendor {
	case VendorIETF:
		return newIETFValue(id.Type)
	case VendorTrustnac:
		return newTrustnacValue(id.Type)
	}
	return nil
}

// newIETFValue returns a new zero value of IETF type t, or nil.
func newIETFValue(t uint32) Value {
	switch t {
	case AttrAttributeRequest:
		return new(AttributeRequest)
	case AttrProductInformation:
		return new(ProductInformation)
	case AttrNumericVersion:
		return new(NumericVersion)
	case AttrStringVersion:
		return new(StringVersion)
	case AttrOperationalStatus:
		return new(OperationalStatus)
	case AttrPortFilter:
		return new(PortFilter)
	case AttrInstalledPackages:
		return new(InstalledPackages)
	case AttrPATNCError:
		return new(PAError)
	case AttrAssessmentResult:
		return new(AssessmentResult)
	case AttrRemediationInstructions:
		return new(RemediationInstructions)
	case AttrForwardingEnabled:
		return new(ForwardingEnabled)
	case AttrFactoryDefaultPasswordEnabled:
		return new(FactoryDefaultPasswordEnabled)
	}
	return nil
}

// Decodable reports whether DecodeAttribute has a typed value for id: the
// IETF standard attribute types 1–12 and trustnac's types 1–7.
func Decodable(id AttrID) bool { return NewValue(id) != nil }

// DecodeAttribute decodes the value of an IETF standard attribute (types
// 1–12, RFC 5792 §4.2.1–§4.2.12) or of a trustnac TPM evidence attribute
// (vendor VendorTrustnac, types 1–7) into its typed value, returned as a
// pointer (*ProductInformation, *TPMQuote, ...). Other vendors and
// types give an error wrapping ErrUnknownAttribute; the caller keeps the raw
// Attribute. A malformed value gives a *ParseError whose Offset counts from
// the start of the value ((*Message).DecodeAt counts from the message).
func DecodeAttribute(a Attribute) (Value, error) {
	v := NewValue(a.ID())
	if v == nil {
		return nil, fmt.Errorf("%w %v", ErrUnknownAttribute, a.ID())
	}
	if err := v.UnmarshalBinary(a.Value); err != nil {
		return nil, err
	}
	return v, nil
}

// UnsupportedNoSkip returns one Attribute Type Not Supported error (RFC
// 5792 §4.2.8) for each NOSKIP attribute of m whose type supported rejects,
// in message order, or nil if there is none. A receiver given a non-empty
// result must not process any attribute of the message (RFC 5792 §4.2) and
// answers with these errors. A nil supported accepts exactly what
// DecodeAttribute decodes (Decodable).
func UnsupportedNoSkip(m *Message, supported func(AttrID) bool) []*PAError {
	if supported == nil {
		supported = Decodable
	}
	var out []*PAError
	var hdr []byte
	for _, a := range m.Attributes {
		if !a.NoSkip || supported(a.ID()) {
			continue
		}
		if hdr == nil {
			hdr = m.Header()
		}
		out = append(out, NewAttributeTypeNotSupportedError(hdr, a))
	}
	return out
}
