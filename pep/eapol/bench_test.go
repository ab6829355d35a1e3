package eapol

import (
	"net"
	"testing"
)

func BenchmarkParseEthernet(b *testing.B) {
	f := &Frame{Version: 2, Type: TypeEAPPacket, Body: append([]byte{2, 9, 0x04, 0x04, 21, 0}, make([]byte, 1024)...)}
	raw, err := AppendEthernet(nil, PAEGroupAddr, net.HardwareAddr{2, 0, 0, 0, 0, 1}, f)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ParseEthernet(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEthernet(b *testing.B) {
	f := &Frame{Version: 2, Type: TypeEAPPacket, Body: append([]byte{2, 9, 0x04, 0x04, 21, 0}, make([]byte, 1024)...)}
	src := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(EthernetHeaderLen + f.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendEthernet(buf[:0], PAEGroupAddr, src, f); err != nil {
			b.Fatal(err)
		}
	}
}
