package pbtnc

import "fmt"

// Result is the outcome a PB-TNC Server sends in a RESULT batch
// (RFC 5793 §4.1, §4.6–§4.8, §4.11).
type Result struct {
	// Assessment is the PB-Assessment-Result; nil when not sent. RFC 5793
	// requires one in every RESULT batch: a Server sends
	// AssessmentDontKnow when it is nil.
	Assessment *AssessmentResult
	// Recommendation is the PB-Access-Recommendation; 0 when not sent.
	Recommendation AccessRecommendation
	// Remediation holds the PB-Remediation-Parameters messages.
	Remediation []RemediationParameters
	// Reasons holds the PB-Reason-String messages.
	Reasons []ReasonString
	// PA holds the PB-PA messages carried in the RESULT batch.
	PA []PA
}

// messages appends the messages of a RESULT batch: the PB-PA messages,
// then Assessment-Result, Access-Recommendation, Remediation-Parameters and
// Reason-String messages.
func (r *Result) messages(dst []Message) ([]Message, error) {
	var err error
	for i := range r.PA {
		if dst, err = appendMessage(dst, r.PA[i], MsgPA, true); err != nil {
			return nil, err
		}
	}
	if r.Assessment != nil {
		if dst, err = appendMessage(dst, *r.Assessment, MsgAssessmentResult, true); err != nil {
			return nil, err
		}
	}
	if r.Recommendation != 0 {
		if dst, err = appendMessage(dst, r.Recommendation, MsgAccessRecommendation, false); err != nil {
			return nil, err
		}
	}
	for i := range r.Remediation {
		if dst, err = appendMessage(dst, r.Remediation[i], MsgRemediationParameters, false); err != nil {
			return nil, err
		}
	}
	for i := range r.Reasons {
		if dst, err = appendMessage(dst, r.Reasons[i], MsgReasonString, false); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

type binaryAppender interface {
	AppendBinary([]byte) ([]byte, error)
}

func appendMessage(dst []Message, v binaryAppender, t MessageType, noSkip bool) ([]Message, error) {
	b, err := v.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("pbtnc: %v: %w", t, err)
	}
	return append(dst, Message{NoSkip: noSkip, Vendor: VendorIETF, Type: t, Value: b}), nil
}

// content is what a validated batch carries for the state machines.
type content struct {
	pas     []PA
	errs    []*Error // PB-Error messages received
	lang    LanguagePreference
	hasLang bool
	result  Result // RESULT batches only
}

// noSkipRequired tells for each IETF message type (§4.3) whether NOSKIP
// must be set (§4.5, §4.6, §4.9) or must be clear (the others).
func noSkipRequired(t MessageType) bool {
	return t == MsgPA || t == MsgAssessmentResult || t == MsgError
}

// allowedIn tells whether an IETF message type may appear in a batch type:
// PB-PA in data and RESULT batches; Assessment-Result, Access-
// Recommendation and Remediation-Parameters only in RESULT; Reason-String
// in RESULT and CLOSE; PB-Error in any batch but CRETRY and SRETRY (which
// are always empty); Language-Preference only in CDATA.
func allowedIn(t MessageType, b BatchType) bool {
	switch t {
	case MsgPA:
		return b == BatchCDATA || b == BatchSDATA || b == BatchResult
	case MsgAssessmentResult, MsgAccessRecommendation, MsgRemediationParameters:
		return b == BatchResult
	case MsgReasonString:
		return b == BatchResult || b == BatchClose
	case MsgError:
		return b != BatchCRetry && b != BatchSRetry
	case MsgLanguagePreference:
		return b == BatchCDATA
	}
	return false
}

// validate applies the receiver's message checks of RFC 5793 §4 to a
// structurally valid batch and decodes the IETF messages. Message values
// alias the batch's own buffer.
func validate(b *Batch) (*content, *Error) {
	c := &content{}
	off := uint32(BatchHeaderLen)
	for i := range b.Messages {
		m := &b.Messages[i]
		start := off
		off += MessageHeaderLen + uint32(len(m.Value))
		if m.Vendor != VendorIETF || m.Type == MsgExperimental || m.Type > MsgReasonString {
			// Not supported here (PB-Experimental included): skip, unless
			// NOSKIP says the sender needs it understood (§4.2).
			if m.NoSkip {
				return nil, unsupportedMandatory(m, start)
			}
			continue
		}
		if want := noSkipRequired(m.Type); m.NoSkip != want {
			return nil, invalidParam(start, "%v with NOSKIP %v, must be %v", m.Type, m.NoSkip, want)
		}
		if !allowedIn(m.Type, b.Type) {
			return nil, invalidParam(start, "%v not allowed in a %v batch", m.Type, b.Type)
		}
		var pe *Error
		switch m.Type {
		case MsgPA:
			var p PA
			if pe = p.unmarshal(m.Value, true); pe == nil {
				if b.Type == BatchResult {
					c.result.PA = append(c.result.PA, p)
				} else {
					c.pas = append(c.pas, p)
				}
			}
		case MsgAssessmentResult:
			if c.result.Assessment != nil {
				return nil, invalidParam(start, "second PB-Assessment-Result in a batch")
			}
			a := new(AssessmentResult)
			if pe = a.unmarshal(m.Value); pe == nil {
				c.result.Assessment = a
			}
		case MsgAccessRecommendation:
			if c.result.Recommendation != 0 {
				return nil, invalidParam(start, "second PB-Access-Recommendation in a batch")
			}
			pe = c.result.Recommendation.unmarshal(m.Value)
		case MsgRemediationParameters:
			var r RemediationParameters
			if pe = r.unmarshal(m.Value, true); pe == nil {
				c.result.Remediation = append(c.result.Remediation, r)
			}
		case MsgError:
			e := new(Error)
			if pe = e.unmarshal(m.Value, true); pe == nil {
				c.errs = append(c.errs, e)
			}
		case MsgLanguagePreference:
			if pe = c.lang.unmarshal(m.Value); pe == nil {
				c.hasLang = true
			}
		case MsgReasonString:
			var r ReasonString
			if pe = r.unmarshal(m.Value); pe == nil {
				c.result.Reasons = append(c.result.Reasons, r)
			}
		}
		if pe != nil {
			pe.Offset += start + MessageHeaderLen
			pe.detail = m.Type.String() + ": " + pe.detail
			return nil, pe
		}
	}
	return c, nil
}

// peerErr returns the PB-Error to report from a received batch: the first
// fatal one, else the first one; nil if none.
func (c *content) peerErr() *peerError {
	if len(c.errs) == 0 {
		return nil
	}
	first := c.errs[0]
	for _, e := range c.errs {
		if e.Fatal {
			first = e
			break
		}
	}
	return &peerError{e: first}
}
