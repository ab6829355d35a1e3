package pdp

import (
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	tradius "trustnac/transport/radius"
)

// The TLS bytes per EAP-TTLS packet follow the NAS's Framed-MTU, within
// the EAP minimum, the configured cap and what an Access-Challenge carries.
func TestFragmentSize(t *testing.T) {
	for _, tt := range []struct {
		framedMTU, maxFragment, want int
	}{
		{0, 0, 1010},       // no Framed-MTU: a 1020-byte EAP packet
		{1400, 0, 1390},    // what switches and nac pep send
		{1400, 1024, 1024}, // the configured cap
		{576, 0, 1010},     // below the EAP minimum (RFC 3748 §3.1)
		{9000, 0, 3790},    // jumbo: what fits a 4096-byte RADIUS packet
		{9000, 4000, 3790},
	} {
		p := radius.New(radius.CodeAccessRequest, []byte("s"))
		if tt.framedMTU > 0 {
			rfc2865.FramedMTU_Set(p, rfc2865.FramedMTU(tt.framedMTU))
		}
		r := &RADIUS{cfg: RADIUSConfig{MaxFragment: tt.maxFragment}}
		q := &request{Request: &tradius.Request{Packet: p}}
		if got := r.fragmentSize(q); got != tt.want {
			t.Errorf("Framed-MTU %d, max_fragment %d: %d, want %d", tt.framedMTU, tt.maxFragment, got, tt.want)
		}
	}
}
