package patnc

import "time"

// Wire constants of RFC 5792.
const (
	Version       = 1  // PA-TNC message version (RFC 5792 §4.1)
	HeaderLen     = 8  // message header: version, 24 reserved bits, message ID
	AttrHeaderLen = 12 // attribute header: flags, vendor, type, length

	FlagNoSkip = 0x80 // attribute flag: the receiver must understand it

	VendorIETF = 0
	VendorTCG  = 0x005597
)

// IETF standard attribute types (RFC 5792 §4.2, RFC 8412 for SWIMA).
const (
	AttrTesting                       = 0
	AttrAttributeRequest              = 1
	AttrProductInformation            = 2
	AttrNumericVersion                = 3
	AttrStringVersion                 = 4
	AttrOperationalStatus             = 5
	AttrPortFilter                    = 6
	AttrInstalledPackages             = 7
	AttrPATNCError                    = 8
	AttrAssessmentResult              = 9
	AttrRemediationInstructions       = 10
	AttrForwardingEnabled             = 11
	AttrFactoryDefaultPasswordEnabled = 12
	AttrSWIMAFirst                    = 13
	AttrSWIMALast                     = 21
)

// Attribute is one PA-TNC attribute as it travels: header fields and the raw
// value. Typed values convert to and from it with EncodeAttribute and
// DecodeAttribute.
type Attribute struct {
	NoSkip bool
	Vendor uint32 // 24 bits on the wire
	Type   uint32
	Value  []byte
}

// Message is one PA-TNC message (RFC 5792 §4.1).
type Message struct {
	ID         uint32
	Attributes []Attribute
}

// AttrID names an attribute type, as listed in an Attribute Request.
type AttrID struct {
	Vendor uint32
	Type   uint32
}

// Value is a typed attribute value.
type Value interface {
	// AttrID tells which attribute type the value is.
	AttrID() AttrID
	// AppendBinary appends the attribute value (without the header).
	AppendBinary(b []byte) ([]byte, error)
	// UnmarshalBinary decodes the attribute value (without the header).
	UnmarshalBinary(b []byte) error
}

// AttributeRequest asks the peer for the listed attributes (type 1).
type AttributeRequest []AttrID

// ProductInformation identifies the product a component is (type 2).
type ProductInformation struct {
	VendorID  uint32 // SMI private enterprise number, 24 bits
	ProductID uint16
	Name      string
}

// NumericVersion is a component's version in numbers (type 3).
type NumericVersion struct {
	Major, Minor, Build                uint32
	ServicePackMajor, ServicePackMinor uint16
}

// StringVersion is a component's version as strings (type 4); each is at
// most 255 bytes.
type StringVersion struct {
	Version, Build, Config string
}

// Operational status values (type 5).
const (
	StatusUnknown        = 0
	StatusNotInstalled   = 1
	StatusNotOperational = 2
	StatusOperational    = 3
	ResultUnknown        = 0
	ResultSuccess        = 1
	ResultSuccessErrors  = 2
	ResultUnsuccessful   = 3
)

// OperationalStatus tells whether a component runs (type 5). A zero LastUse
// travels as "0000-00-00T00:00:00Z".
type OperationalStatus struct {
	Status  uint8
	Result  uint8
	LastUse time.Time
}

// PortFilterEntry is one port the endpoint blocks or allows (type 6).
type PortFilterEntry struct {
	Blocked  bool
	Protocol uint8 // IANA protocol number: 6 TCP, 17 UDP
	Port     uint16
}

// PortFilter lists the filtered ports (type 6).
type PortFilter []PortFilterEntry

// Package is one installed package (type 7); name and version are at most
// 255 bytes each.
type Package struct {
	Name, Version string
}

// InstalledPackages lists installed packages (type 7), at most 65535.
type InstalledPackages []Package

// IETF PA-TNC error codes (RFC 5792 §4.2.8).
const (
	ErrInvalidParameter          = 0
	ErrVersionNotSupported       = 1
	ErrAttributeTypeNotSupported = 2
)

// PAError is the PA-TNC Error attribute (type 8). Info holds the error
// information exactly as on the wire; the constructors below fill it.
type PAError struct {
	Vendor uint32 // error code vendor, 24 bits
	Code   uint32
	Info   []byte
}

// Assessment result values (type 9).
const (
	AssessmentCompliant = 0
	AssessmentMinor     = 1
	AssessmentMajor     = 2
	AssessmentError     = 3
	AssessmentDontKnow  = 4
)

// AssessmentResult is a validator's assessment (type 9).
type AssessmentResult uint32

// Remediation parameter types (type 10, RFC 5792 §4.2.10).
const (
	RemediationURI    = 1
	RemediationString = 2
)

// RemediationInstructions tells the endpoint how to fix itself (type 10).
// For IETF type RemediationURI, URI is set; for RemediationString, Text and
// Lang; for other vendors or types, Raw holds the parameters.
type RemediationInstructions struct {
	Vendor uint32
	Type   uint32
	URI    string
	Text   string
	Lang   string
	Raw    []byte
}

// Forwarding Enabled values (type 11, RFC 5792 §4.2.11). The "enabled"
// value is named ForwardingIsEnabled because ForwardingEnabled names the
// attribute's type.
const (
	ForwardingDisabled  = 0
	ForwardingIsEnabled = 1
	ForwardingUnknown   = 2
)

// ForwardingEnabled tells whether the endpoint forwards traffic (type 11).
type ForwardingEnabled uint32

// FactoryDefaultPasswordEnabled tells whether a factory default password
// is set (type 12): 0 no, 1 yes.
type FactoryDefaultPasswordEnabled uint32
