package radius

import (
	"slices"

	radius "layeh.com/radius"
)

// EAPMessage returns the EAP packet carried in p: the values of all
// EAP-Message attributes concatenated in order (RFC 3579 §3.1). It returns
// false when p has none. The result is a copy.
func EAPMessage(p *radius.Packet) ([]byte, bool) {
	n, found := 0, false
	for _, a := range p.Attributes {
		if a != nil && a.Type == typeEAPMessage {
			n += len(a.Attribute)
			found = true
		}
	}
	if !found {
		return nil, false
	}
	eap := make([]byte, 0, n)
	for _, a := range p.Attributes {
		if a != nil && a.Type == typeEAPMessage {
			eap = append(eap, a.Attribute...)
		}
	}
	return eap, true
}

// SetEAPMessage replaces the EAP-Message attributes of p with eap split
// into attributes of at most 253 octets, appended in order (RFC 3579 §3.1).
// An empty eap adds one empty EAP-Message, the EAP-Start of RFC 3579 §2.1.
// The bytes are copied.
func SetEAPMessage(p *radius.Packet, eap []byte) {
	p.Attributes = slices.DeleteFunc(p.Attributes, func(a *radius.AVP) bool {
		return a == nil || a.Type == typeEAPMessage
	})
	if len(eap) == 0 {
		p.Attributes.Add(typeEAPMessage, radius.Attribute{})
		return
	}
	buf := make([]byte, len(eap))
	copy(buf, eap)
	for len(buf) > 0 {
		n := min(len(buf), maxAttrValueLen)
		p.Attributes.Add(typeEAPMessage, radius.Attribute(buf[:n:n]))
		buf = buf[n:]
	}
}
