package imc

import (
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Outcome is a PDP decision as the endpoint learns it from a RESULT batch.
//
// PB-TNC carries an access recommendation (allowed, denied, quarantined) and
// an assessment result, not the PDP's role. The PDP encodes its role in the
// pair, and Role reads it back:
//
//	admit      allowed      compliant
//	remediate  quarantined  minor non-compliance
//	isolate    quarantined  major non-compliance (or error)
//	assess     quarantined  don't know
//	deny       denied       any
type Outcome struct {
	Role           string
	Recommendation pbtnc.AccessRecommendation
	Assessment     uint32
	Reasons        []string
	Remediation    []Remediation
}

// Remediation is one instruction to fix the endpoint.
type Remediation struct {
	URI  string
	Text string
	Lang string
}

// OutcomeOf reads the endpoint's outcome from a PB-TNC result. A result
// without an access recommendation counts as a denial.
func OutcomeOf(r pbtnc.Result) Outcome {
	o := Outcome{Recommendation: r.Recommendation, Assessment: patnc.AssessmentDontKnow}
	if r.Assessment != nil {
		o.Assessment = uint32(*r.Assessment)
	}
	switch r.Recommendation {
	case pbtnc.RecommendationAllowed:
		o.Role = "admit"
	case pbtnc.RecommendationQuarantined:
		switch o.Assessment {
		case patnc.AssessmentMinor:
			o.Role = "remediate"
		case patnc.AssessmentDontKnow:
			o.Role = "assess"
		default:
			o.Role = "isolate"
		}
	default:
		o.Role = "deny"
	}
	for _, rs := range r.Reasons {
		o.Reasons = append(o.Reasons, rs.Reason)
	}
	seen := map[Remediation]bool{}
	add := func(rem Remediation) {
		if rem != (Remediation{}) && !seen[rem] {
			seen[rem] = true
			o.Remediation = append(o.Remediation, rem)
		}
	}
	for _, rp := range r.Remediation {
		if rp.Vendor == pbtnc.VendorIETF {
			add(Remediation{URI: rp.URI, Text: rp.Text, Lang: rp.Lang})
		}
	}
	// Verifiers may also send PA-TNC Remediation Instructions in the RESULT
	// batch (RFC 5792 §4.2.10).
	for _, pa := range r.PA {
		msg, err := patnc.ParseMessage(pa.Body, maxAttributes)
		if err != nil {
			continue
		}
		for _, a := range msg.Attributes {
			if a.Vendor != patnc.VendorIETF || a.Type != patnc.AttrRemediationInstructions {
				continue
			}
			v, err := patnc.DecodeAttribute(a)
			if err != nil {
				continue
			}
			if ri, ok := v.(*patnc.RemediationInstructions); ok && ri.Vendor == patnc.VendorIETF {
				add(Remediation{URI: ri.URI, Text: ri.Text, Lang: ri.Lang})
			}
		}
	}
	return o
}
