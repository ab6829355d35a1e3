package patnc

import (
	"fmt"
	"testing"
	"time"
)

// osValues is what an OS collector sends: product information, both
// versions, operational status and 1,500 installed packages.
func osValues() []Value {
	pkgs := make(InstalledPackages, 1500)
	for i := range pkgs {
		pkgs[i] = Package{
			Name:    fmt.Sprintf("lib%s-%d-common", []string{"ssl", "xml2", "gtk", "python3"}[i%4], i),
			Version: fmt.Sprintf("%d.%d.%d-%dubuntu%d", i%7, i%13, i%31, i%5, i%3),
		}
	}
	return []Value{
		&ProductInformation{VendorID: 0, ProductID: 0, Name: "ubuntu"},
		&NumericVersion{Major: 24, Minor: 4},
		&StringVersion{Version: "24.04", Build: "6.8.0-45-generic", Config: "x86_64"},
		&OperationalStatus{Status: StatusOperational, Result: ResultSuccess, LastUse: time.Date(2025, 11, 25, 8, 0, 0, 0, time.UTC)},
		&pkgs,
	}
}

func encodeOS(b *testing.B, vals []Value) []byte {
	m := &Message{ID: 1}
	for _, v := range vals {
		if err := m.Add(v, false); err != nil {
			b.Fatal(err)
		}
	}
	wire, err := m.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	return wire
}

// BenchmarkMarshalMessage encodes the OS attributes and the message, as
// an IMC does for each assessment.
func BenchmarkMarshalMessage(b *testing.B) {
	vals := osValues()
	wire := encodeOS(b, vals)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		encodeOS(b, vals)
	}
}

// BenchmarkParseMessage parses the OS message and decodes every
// attribute, as an IMV does.
func BenchmarkParseMessage(b *testing.B) {
	wire := encodeOS(b, osValues())
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseMessage(wire, 0)
		if err != nil {
			b.Fatal(err)
		}
		for i := range m.Attributes {
			if _, err := m.DecodeAt(i); err != nil {
				b.Fatal(err)
			}
		}
	}
}
