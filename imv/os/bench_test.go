package osimv_test

import (
	"context"
	"fmt"
	"testing"

	"trustnac/imv"
	osimv "trustnac/imv/os"
	"trustnac/transport/patnc"
)

// BenchmarkVerifier1500Packages measures one session receiving a first
// batch with 1,500 installed packages and producing its result.
func BenchmarkVerifier1500Packages(b *testing.B) {
	pkgs := make(patnc.InstalledPackages, 1500)
	for i := range pkgs {
		pkgs[i] = patnc.Package{Name: fmt.Sprintf("package-name-%04d", i), Version: fmt.Sprintf("1:2.%d.3-4+deb12u1", i)}
	}
	attrs := enc(b,
		&patnc.ProductInformation{Name: "debian"},
		&patnc.StringVersion{Version: "12", Build: "6.1.0-18-amd64", Config: "x86_64"},
		&patnc.NumericVersion{Major: 12},
		&patnc.OperationalStatus{Status: patnc.StatusOperational, Result: patnc.ResultSuccess},
		&pkgs,
		fwd(patnc.ForwardingDisabled),
		&patnc.PortFilter{{Protocol: 6, Port: 22}, {Protocol: 17, Port: 68}},
	)
	msg := wire(b, 1, attrs...)
	raw, _ := msg.MarshalBinary()
	v := osimv.New(osimv.Config{}, nil)
	ctx := context.Background()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		s, _ := v.NewSession(ctx, imv.Endpoint{ID: "ep"})
		if out, err := s.Receive(ctx, msg); err != nil || out != nil {
			b.Fatal(out, err)
		}
		if r := s.Result(); r.Recommendation != imv.Allow {
			b.Fatal(r.Reasons)
		}
	}
}
