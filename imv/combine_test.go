package imv

import (
	"testing"

	"trustnac/transport/patnc"
)

func TestCombine(t *testing.T) {
	allow := Result{Recommendation: Allow, Assessment: patnc.AssessmentCompliant}
	isolate := Result{Recommendation: Isolate, Assessment: patnc.AssessmentMajor, Reasons: []string{"pcr 7 off"}}
	deny := Result{Recommendation: NoAccess, Assessment: patnc.AssessmentError, Reasons: []string{"bad signature"}}
	none := Result{}
	tests := []struct {
		name    string
		in      []Result
		want    Recommendation
		assess  uint32
		reasons int
	}{
		{"nothing at all", nil, Isolate, patnc.AssessmentDontKnow, 1},
		{"all abstain", []Result{none, none}, Isolate, patnc.AssessmentDontKnow, 1},
		{"one allows", []Result{allow}, Allow, patnc.AssessmentCompliant, 0},
		{"abstain and allow", []Result{none, allow}, Allow, patnc.AssessmentCompliant, 0},
		{"isolate wins over allow", []Result{allow, isolate}, Isolate, patnc.AssessmentMajor, 1},
		{"no access wins", []Result{isolate, deny, allow}, NoAccess, patnc.AssessmentError, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Combine(tt.in)
			if c.Recommendation != tt.want || c.Assessment != tt.assess || len(c.Reasons) != tt.reasons {
				t.Errorf("Combine = %v/%d/%q, want %v/%d/%d reasons", c.Recommendation, c.Assessment, c.Reasons, tt.want, tt.assess, tt.reasons)
			}
		})
	}
}
