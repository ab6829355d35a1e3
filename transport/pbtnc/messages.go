package pbtnc

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PA is the value of a PB-PA message (RFC 5793 §4.5): one PA-TNC message
// between a posture collector (IMC) and a posture validator (IMV).
type PA struct {
	// Exclusive is the EXCL flag: deliver only to the collector/validator
	// named by the ID (not to every one of the subtype).
	Exclusive bool
	// Subtype is the PA Message Vendor ID and PA Subtype.
	Subtype PASubtype
	// CollectorID is the Posture Collector Identifier (AnyID if none).
	CollectorID uint16
	// ValidatorID is the Posture Validator Identifier (AnyID if none).
	ValidatorID uint16
	// Body is the PA message body: a PA-TNC message (RFC 5792).
	Body []byte
}

const (
	paHeaderLen = 12
	paFlagExcl  = 0x80
)

// AppendBinary appends the PB-PA message value (RFC 5793 §4.5).
func (p PA) AppendBinary(dst []byte) ([]byte, error) {
	if p.Subtype.Vendor >= reservedVendor {
		return dst, fmt.Errorf("%w: PA vendor ID %#x is reserved or exceeds 24 bits", ErrEncode, p.Subtype.Vendor)
	}
	if p.Subtype.Subtype == reservedType {
		return dst, fmt.Errorf("%w: PA subtype %#x is reserved", ErrEncode, p.Subtype.Subtype)
	}
	var flags byte
	if p.Exclusive {
		flags = paFlagExcl
	}
	v := p.Subtype.Vendor
	dst = append(dst, flags, byte(v>>16), byte(v>>8), byte(v))
	dst = binary.BigEndian.AppendUint32(dst, p.Subtype.Subtype)
	dst = binary.BigEndian.AppendUint16(dst, p.CollectorID)
	dst = binary.BigEndian.AppendUint16(dst, p.ValidatorID)
	return append(dst, p.Body...), nil
}

// UnmarshalBinary decodes a PB-PA message value, copying the body. On
// failure it returns an *Error whose Offset is relative to data.
func (p *PA) UnmarshalBinary(data []byte) error {
	if pe := p.unmarshal(data, false); pe != nil {
		return pe
	}
	return nil
}

func (p *PA) unmarshal(data []byte, alias bool) *Error {
	if len(data) < paHeaderLen {
		return invalidParam(0, "PB-PA value is %d bytes, shorter than %d", len(data), paHeaderLen)
	}
	vendor := uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3])
	if vendor == reservedVendor {
		return invalidParam(1, "PA message vendor ID %#x is reserved", vendor)
	}
	sub := binary.BigEndian.Uint32(data[4:8])
	if sub == reservedType {
		return invalidParam(4, "PA subtype %#x is reserved", sub)
	}
	*p = PA{
		Exclusive:   data[0]&paFlagExcl != 0,
		Subtype:     PASubtype{Vendor: vendor, Subtype: sub},
		CollectorID: binary.BigEndian.Uint16(data[8:10]),
		ValidatorID: binary.BigEndian.Uint16(data[10:12]),
		Body:        cloneOrAlias(data[paHeaderLen:], alias),
	}
	return nil
}

// Message returns the PB-PA message, NOSKIP set (RFC 5793 §4.5). A
// reserved or oversized vendor or subtype yields an empty value; use
// AppendBinary to detect it.
func (p PA) Message() Message {
	v, _ := p.AppendBinary(nil)
	return Message{NoSkip: true, Vendor: VendorIETF, Type: MsgPA, Value: v}
}

// AssessmentResult is the value of a PB-Assessment-Result message
// (RFC 5793 §4.6), as in the PA-TNC Assessment Result attribute (RFC 5792
// §4.2.10).
type AssessmentResult uint32

// Assessment results (RFC 5792 §4.2.10).
const (
	AssessmentCompliant          AssessmentResult = 0
	AssessmentMinorNonCompliance AssessmentResult = 1
	AssessmentMajorNonCompliance AssessmentResult = 2
	AssessmentError              AssessmentResult = 3
	AssessmentDontKnow           AssessmentResult = 4
)

// String names the assessment result.
func (a AssessmentResult) String() string {
	switch a {
	case AssessmentCompliant:
		return "compliant"
	case AssessmentMinorNonCompliance:
		return "minor non-compliance"
	case AssessmentMajorNonCompliance:
		return "major non-compliance"
	case AssessmentError:
		return "error"
	case AssessmentDontKnow:
		return "don't know"
	}
	return "AssessmentResult(" + strconv.FormatUint(uint64(a), 10) + ")"
}

// AppendBinary appends the 4-byte message value (RFC 5793 §4.6).
func (a AssessmentResult) AppendBinary(dst []byte) ([]byte, error) {
	if a > AssessmentDontKnow {
		return dst, fmt.Errorf("%w: assessment result %d", ErrEncode, uint32(a))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(a)), nil
}

// UnmarshalBinary decodes the message value; it must be 4 bytes holding a
// defined result.
func (a *AssessmentResult) UnmarshalBinary(data []byte) error {
	if pe := a.unmarshal(data); pe != nil {
		return pe
	}
	return nil
}

func (a *AssessmentResult) unmarshal(data []byte) *Error {
	if len(data) != 4 {
		return invalidParam(0, "PB-Assessment-Result value is %d bytes, want 4", len(data))
	}
	v := AssessmentResult(binary.BigEndian.Uint32(data))
	if v > AssessmentDontKnow {
		return invalidParam(0, "unknown assessment result %d", uint32(v))
	}
	*a = v
	return nil
}

// Message returns the PB-Assessment-Result message, NOSKIP set
// (RFC 5793 §4.6).
func (a AssessmentResult) Message() Message {
	v, _ := a.AppendBinary(nil)
	return Message{NoSkip: true, Vendor: VendorIETF, Type: MsgAssessmentResult, Value: v}
}

// AccessRecommendation is the value of a PB-Access-Recommendation message
// (RFC 5793 §4.7); 0 in Result means none was sent.
type AccessRecommendation uint16

// Access recommendations (RFC 5793 §4.7).
const (
	RecommendationAllowed     AccessRecommendation = 1
	RecommendationDenied      AccessRecommendation = 2
	RecommendationQuarantined AccessRecommendation = 3
)

// String names the recommendation.
func (r AccessRecommendation) String() string {
	switch r {
	case RecommendationAllowed:
		return "allowed"
	case RecommendationDenied:
		return "denied"
	case RecommendationQuarantined:
		return "quarantined"
	}
	return "AccessRecommendation(" + strconv.Itoa(int(r)) + ")"
}

// AppendBinary appends the 4-byte message value: 16 reserved bits and the
// recommendation (RFC 5793 §4.7).
func (r AccessRecommendation) AppendBinary(dst []byte) ([]byte, error) {
	if r < RecommendationAllowed || r > RecommendationQuarantined {
		return dst, fmt.Errorf("%w: access recommendation %d", ErrEncode, uint16(r))
	}
	return append(dst, 0, 0, byte(r>>8), byte(r)), nil
}

// UnmarshalBinary decodes the message value; it must be 4 bytes holding a
// defined recommendation.
func (r *AccessRecommendation) UnmarshalBinary(data []byte) error {
	if pe := r.unmarshal(data); pe != nil {
		return pe
	}
	return nil
}

func (r *AccessRecommendation) unmarshal(data []byte) *Error {
	if len(data) != 4 {
		return invalidParam(0, "PB-Access-Recommendation value is %d bytes, want 4", len(data))
	}
	v := AccessRecommendation(binary.BigEndian.Uint16(data[2:4]))
	if v < RecommendationAllowed || v > RecommendationQuarantined {
		return invalidParam(2, "unknown access recommendation %d", uint16(v))
	}
	*r = v
	return nil
}

// Message returns the PB-Access-Recommendation message, NOSKIP clear
// (RFC 5793 §4.7).
func (r AccessRecommendation) Message() Message {
	v, _ := r.AppendBinary(nil)
	return Message{Vendor: VendorIETF, Type: MsgAccessRecommendation, Value: v}
}

// IETF Remediation Parameters Types (RFC 5793 §4.8).
const (
	RemediationURI    = 1 // Remediation-URI: RemediationParameters.URI
	RemediationString = 2 // Remediation-String: RemediationParameters.Text and Lang
)

// RemediationParameters is the value of a PB-Remediation-Parameters
// message (RFC 5793 §4.8). For the IETF vendor, Type RemediationURI uses
// URI (§4.8.1) and Type RemediationString uses Text and Lang (§4.8.2);
// other types keep their parameters in Raw.
type RemediationParameters struct {
	Vendor uint32 // Remediation Parameters Vendor ID, 24 bits
	Type   uint32
	URI    string
	Text   string // Remediation String, UTF-8
	Lang   string // Remediation String Language Code (RFC 5646 tag)
	Raw    []byte
}

const remediationHeaderLen = 8

func (r RemediationParameters) isURI() bool {
	return r.Vendor == VendorIETF && r.Type == RemediationURI
}

func (r RemediationParameters) isString() bool {
	return r.Vendor == VendorIETF && r.Type == RemediationString
}

// AppendBinary appends the message value (RFC 5793 §4.8).
func (r RemediationParameters) AppendBinary(dst []byte) ([]byte, error) {
	if r.Vendor > maxVendor {
		return dst, fmt.Errorf("%w: remediation vendor ID %#x exceeds 24 bits", ErrEncode, r.Vendor)
	}
	switch {
	case r.isURI():
		if err := checkText(r.URI, "remediation URI"); err != nil {
			return dst, err
		}
	case r.isString():
		if err := checkText(r.Text, "remediation string"); err != nil {
			return dst, err
		}
		if err := checkLang(r.Lang); err != nil {
			return dst, err
		}
	}
	dst = append(dst, 0, byte(r.Vendor>>16), byte(r.Vendor>>8), byte(r.Vendor))
	dst = binary.BigEndian.AppendUint32(dst, r.Type)
	switch {
	case r.isURI():
		return append(dst, r.URI...), nil
	case r.isString():
		return appendLangString(dst, r.Text, r.Lang), nil
	}
	return append(dst, r.Raw...), nil
}

// UnmarshalBinary decodes the message value. On failure it returns an
// *Error whose Offset is relative to data.
func (r *RemediationParameters) UnmarshalBinary(data []byte) error {
	if pe := r.unmarshal(data, false); pe != nil {
		return pe
	}
	return nil
}

func (r *RemediationParameters) unmarshal(data []byte, alias bool) *Error {
	if len(data) < remediationHeaderLen {
		return invalidParam(0, "PB-Remediation-Parameters value is %d bytes, shorter than %d", len(data), remediationHeaderLen)
	}
	out := RemediationParameters{
		Vendor: uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3]),
		Type:   binary.BigEndian.Uint32(data[4:8]),
	}
	params := data[remediationHeaderLen:]
	switch {
	case out.isURI():
		if pe := validText(params, "remediation URI"); pe != nil {
			pe.Offset += remediationHeaderLen
			return pe
		}
		out.URI = string(params)
	case out.isString():
		text, lang, pe := parseLangString(params, "remediation string")
		if pe != nil {
			pe.Offset += remediationHeaderLen
			return pe
		}
		out.Text, out.Lang = text, lang
	default:
		out.Raw = cloneOrAlias(params, alias)
	}
	*r = out
	return nil
}

// Message returns the PB-Remediation-Parameters message, NOSKIP clear
// (RFC 5793 §4.8). An unencodable value yields an empty value; use
// AppendBinary to detect it.
func (r RemediationParameters) Message() Message {
	v, _ := r.AppendBinary(nil)
	return Message{Vendor: VendorIETF, Type: MsgRemediationParameters, Value: v}
}

// LanguagePreference is the value of a PB-Language-Preference message
// (RFC 5793 §4.10): the body of an Accept-Language header (RFC 3282), for
// example "fr, en;q=0.8". On the wire it is preceded by "Accept-Language: ".
type LanguagePreference string

const langPrefix = "Accept-Language: "

// AppendBinary appends "Accept-Language: " and the preference. The
// preference must be printable US-ASCII.
func (l LanguagePreference) AppendBinary(dst []byte) ([]byte, error) {
	for i := 0; i < len(l); i++ {
		if !headerChar(l[i]) {
			return dst, fmt.Errorf("%w: language preference byte %d (%#x) is not printable US-ASCII", ErrEncode, i, l[i])
		}
	}
	dst = append(dst, langPrefix...)
	return append(dst, l...), nil
}

// UnmarshalBinary decodes the message value: an Accept-Language header
// (the name matched case-insensitively) with a printable US-ASCII body.
func (l *LanguagePreference) UnmarshalBinary(data []byte) error {
	if pe := l.unmarshal(data); pe != nil {
		return pe
	}
	return nil
}

func (l *LanguagePreference) unmarshal(data []byte) *Error {
	name := langPrefix[:len("Accept-Language:")]
	if len(data) < len(name) || !strings.EqualFold(string(data[:len(name)]), name) {
		return invalidParam(0, "language preference does not start with %q", name)
	}
	i := len(name)
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	for j := i; j < len(data); j++ {
		if !headerChar(data[j]) {
			return invalidParam(uint32(j), "language preference byte %#x is not printable US-ASCII", data[j])
		}
	}
	*l = LanguagePreference(data[i:])
	return nil
}

// Message returns the PB-Language-Preference message, NOSKIP clear
// (RFC 5793 §4.10). An unencodable preference yields an empty value; use
// AppendBinary to detect it.
func (l LanguagePreference) Message() Message {
	v, _ := l.AppendBinary(nil)
	return Message{Vendor: VendorIETF, Type: MsgLanguagePreference, Value: v}
}

// ReasonString is the value of a PB-Reason-String message (RFC 5793
// §4.11): a human-readable reason for the assessment decision.
type ReasonString struct {
	Reason string // UTF-8, not NUL-terminated
	Lang   string // Reason String Language Code (RFC 5646 tag), may be empty
}

// AppendBinary appends the message value: 32-bit length, reason, 8-bit
// language code length, language code (RFC 5793 §4.11).
func (r ReasonString) AppendBinary(dst []byte) ([]byte, error) {
	if err := checkText(r.Reason, "reason string"); err != nil {
		return dst, err
	}
	if err := checkLang(r.Lang); err != nil {
		return dst, err
	}
	return appendLangString(dst, r.Reason, r.Lang), nil
}

// UnmarshalBinary decodes the message value. On failure it returns an
// *Error whose Offset is relative to data.
func (r *ReasonString) UnmarshalBinary(data []byte) error {
	if pe := r.unmarshal(data); pe != nil {
		return pe
	}
	return nil
}

func (r *ReasonString) unmarshal(data []byte) *Error {
	text, lang, pe := parseLangString(data, "reason string")
	if pe != nil {
		return pe
	}
	*r = ReasonString{Reason: text, Lang: lang}
	return nil
}

// Message returns the PB-Reason-String message, NOSKIP clear
// (RFC 5793 §4.11). An unencodable value yields an empty value; use
// AppendBinary to detect it.
func (r ReasonString) Message() Message {
	v, _ := r.AppendBinary(nil)
	return Message{Vendor: VendorIETF, Type: MsgReasonString, Value: v}
}

// appendLangString writes the layout shared by Remediation-String
// (§4.8.2) and PB-Reason-String (§4.11). Lengths are checked by callers.
func appendLangString(dst []byte, text, lang string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(text)))
	dst = append(dst, text...)
	dst = append(dst, byte(len(lang)))
	return append(dst, lang...)
}

func parseLangString(data []byte, what string) (text, lang string, pe *Error) {
	if len(data) < 5 {
		return "", "", invalidParam(0, "%s value is %d bytes, shorter than 5", what, len(data))
	}
	n := binary.BigEndian.Uint32(data[0:4])
	if uint64(n) > uint64(len(data)-5) {
		return "", "", invalidParam(0, "%s length %d exceeds the %d bytes available", what, n, len(data)-5)
	}
	body := data[4 : 4+n]
	if pe := validText(body, what); pe != nil {
		pe.Offset += 4
		return "", "", pe
	}
	at := 4 + int(n)
	ln := int(data[at])
	if ln != len(data)-at-1 {
		return "", "", invalidParam(uint32(at), "%s language code length %d but %d bytes follow", what, ln, len(data)-at-1)
	}
	code := data[at+1:]
	for i, c := range code {
		if !langChar(c) {
			return "", "", invalidParam(uint32(at+1+i), "%s language code byte %#x is invalid", what, c)
		}
	}
	return string(body), string(code), nil
}

// validText checks a UTF-8 string field that must not be NUL-terminated
// (RFC 5793 §4.8.2, §4.11).
func validText(b []byte, what string) *Error {
	if !utf8.Valid(b) {
		return invalidParam(0, "%s is not valid UTF-8", what)
	}
	if len(b) > 0 && b[len(b)-1] == 0 {
		return invalidParam(uint32(len(b)-1), "%s is NUL-terminated", what)
	}
	return nil
}

func checkText(s, what string) error {
	if uint64(len(s)) > math.MaxUint32-16 {
		return fmt.Errorf("%w: %s of %d bytes is too long", ErrEncode, what, len(s))
	}
	if pe := validText([]byte(s), what); pe != nil {
		return fmt.Errorf("%w: %s", ErrEncode, pe.detail)
	}
	return nil
}

func checkLang(lang string) error {
	if len(lang) > math.MaxUint8 {
		return fmt.Errorf("%w: language code of %d bytes exceeds 255", ErrEncode, len(lang))
	}
	for i := 0; i < len(lang); i++ {
		if !langChar(lang[i]) {
			return fmt.Errorf("%w: language code byte %#x is invalid", ErrEncode, lang[i])
		}
	}
	return nil
}

// langChar accepts the characters allowed in a language code: an RFC 5646
// tag is letters, digits and '-'; any visible US-ASCII is accepted so that
// sloppy tags ("en_US") from peers do not fail a handshake.
func langChar(c byte) bool { return c > 0x20 && c < 0x7f }

// headerChar accepts printable US-ASCII and horizontal tab.
func headerChar(c byte) bool { return c == '\t' || (c >= 0x20 && c < 0x7f) }
