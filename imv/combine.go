package imv

import "trustnac/transport/patnc"

// String names the recommendation as TNC IF-IMV does.
func (r Recommendation) String() string {
	switch r {
	case NoRecommendation:
		return "no recommendation"
	case Allow:
		return "allow"
	case Isolate:
		return "isolate"
	case NoAccess:
		return "no access"
	}
	return "unknown"
}

// Combined is the joint verdict of all verifiers of one handshake.
type Combined struct {
	Recommendation Recommendation
	Assessment     uint32
	// Reasons are those of the verifiers that restrict access, in verifier
	// order.
	Reasons []string
}

// Combine joins the results of several verifiers: the most restrictive
// recommendation wins, and a verifier without a recommendation abstains.
// When every verifier abstains nobody judged the endpoint, so the result is
// Isolate: no recommendation never means allow.
func Combine(results []Result) Combined {
	c := Combined{Recommendation: NoRecommendation, Assessment: patnc.AssessmentCompliant}
	for _, r := range results {
		if r.Recommendation > c.Recommendation {
			c.Recommendation = r.Recommendation
		}
		if r.Recommendation != NoRecommendation && worseAssessment(r.Assessment, c.Assessment) {
			c.Assessment = r.Assessment
		}
		if r.Recommendation == Isolate || r.Recommendation == NoAccess {
			c.Reasons = append(c.Reasons, r.Reasons...)
		}
	}
	if c.Recommendation == NoRecommendation {
		c.Recommendation = Isolate
		c.Assessment = patnc.AssessmentDontKnow
		c.Reasons = append(c.Reasons, "no posture evidence was received")
	}
	return c
}

// assessmentRank orders PA-TNC assessment results from best to worst:
// compliant, minor, major, don't know, error.
func assessmentRank(a uint32) int {
	switch a {
	case patnc.AssessmentCompliant:
		return 0
	case patnc.AssessmentMinor:
		return 1
	case patnc.AssessmentMajor:
		return 2
	case patnc.AssessmentDontKnow:
		return 3
	}
	return 4 // error, or a value we do not know
}

func worseAssessment(a, than uint32) bool { return assessmentRank(a) > assessmentRank(than) }
