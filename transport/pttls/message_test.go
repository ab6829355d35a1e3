package pttls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Hand-built vectors following the figures of RFC 6876 §3.5, §3.7.1,
// §3.8.7, §3.8.10 and §3.9.
func TestRFCVectors(t *testing.T) {
	tests := []struct {
		name string
		wire string
		msg  Message
		// check decodes the value and compares it with the figure.
		check func(t *testing.T, value []byte)
	}{
		{
			name: "Version Request 1..1 pref 1",
			wire: "00 000000  00000001  00000014  00000000  00 01 01 01",
			msg:  Message{Type: TypeVersionRequest, ID: 0, Value: []byte{0, 1, 1, 1}},
			check: func(t *testing.T, v []byte) {
				var r VersionRequest
				if err := r.UnmarshalBinary(v); err != nil || r != (VersionRequest{Min: 1, Max: 1, Preferred: 1}) {
					t.Fatalf("got %+v, %v", r, err)
				}
			},
		},
		{
			name: "Version Request min 1 max 3 pref 2",
			wire: "00 000000  00000001  00000014  00000007  00 01 03 02",
			msg:  Message{Type: TypeVersionRequest, ID: 7, Value: []byte{0, 1, 3, 2}},
			check: func(t *testing.T, v []byte) {
				var r VersionRequest
				if err := r.UnmarshalBinary(v); err != nil || r != (VersionRequest{Min: 1, Max: 3, Preferred: 2}) {
					t.Fatalf("got %+v, %v", r, err)
				}
			},
		},
		{
			name: "Version Response 1",
			wire: "00 000000  00000002  00000014  00000000  000000 01",
			msg:  Message{Type: TypeVersionResponse, Value: []byte{0, 0, 0, 1}},
			check: func(t *testing.T, v []byte) {
				var r VersionResponse
				if err := r.UnmarshalBinary(v); err != nil || r.Version != 1 {
					t.Fatalf("got %+v, %v", r, err)
				}
			},
		},
		{
			name: "SASL Mechanisms PLAIN",
			wire: "00 000000  00000003  00000016  00000001  05 504c41494e",
			msg:  Message{Type: TypeSASLMechanisms, ID: 1, Value: []byte("\x05PLAIN")},
			check: func(t *testing.T, v []byte) {
				var m SASLMechanisms
				if err := m.UnmarshalBinary(v); err != nil || len(m.Names) != 1 || m.Names[0] != "PLAIN" {
					t.Fatalf("got %+v, %v", m, err)
				}
			},
		},
		{
			name: "SASL Mechanisms empty (no authentication)",
			wire: "00 000000  00000003  00000010  00000002",
			msg:  Message{Type: TypeSASLMechanisms, ID: 2},
			check: func(t *testing.T, v []byte) {
				var m SASLMechanisms
				if err := m.UnmarshalBinary(v); err != nil || len(m.Names) != 0 {
					t.Fatalf("got %+v, %v", m, err)
				}
			},
		},
		{
			name: "SASL Mechanism Selection PLAIN with initial response",
			wire: "00 000000  00000004  0000001b  00000001  05 504c41494e 00 61 00 62 63",
			msg:  Message{Type: TypeSASLMechanismSelection, ID: 1, Value: []byte("\x05PLAIN\x00a\x00bc")},
			check: func(t *testing.T, v []byte) {
				var s SASLMechanismSelection
				if err := s.UnmarshalBinary(v); err != nil || s.Name != "PLAIN" || string(s.Initial) != "\x00a\x00bc" {
					t.Fatalf("got %+v, %v", s, err)
				}
			},
		},
		{
			name: "SASL Result Success",
			wire: "00 000000  00000006  00000012  00000003  0000",
			msg:  Message{Type: TypeSASLResult, ID: 3, Value: []byte{0, 0}},
			check: func(t *testing.T, v []byte) {
				var r SASLResult
				if err := r.UnmarshalBinary(v); err != nil || r.Code != SASLSuccess || r.Data != nil {
					t.Fatalf("got %+v, %v", r, err)
				}
			},
		},
		{
			name: "PT-TLS Error Version Not Supported with the request copied",
			wire: "00 000000  00000008  00000028  00000000  00 000000  00000002" +
				"00000000 00000001 00000014 00000000",
			msg: Message{Type: TypeError, Value: unhex(t, "00000000 00000002 00000000 00000001 00000014 00000000")},
			check: func(t *testing.T, v []byte) {
				var e Error
				if err := e.UnmarshalBinary(v); err != nil || e.Code != CodeVersionNotSupported || e.Vendor != 0 || len(e.Header) != 16 || !e.Remote {
					t.Fatalf("got %+v, %v", e, err)
				}
			},
		},
		{
			name: "PB-TNC Batch",
			wire: "00 000000  00000007  00000018  00000005  02 800001 00000008",
			msg:  Message{Type: TypePBBatch, ID: 5, Value: unhex(t, "02800001 00000008")},
		},
		{
			name: "vendor-specific message",
			wire: "00 005597  00000001  00000011  ffffffff  aa",
			msg:  Message{Vendor: 0x5597, Type: 1, ID: 0xffffffff, Value: []byte{0xaa}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			got, err := tt.msg.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wire) {
				t.Fatalf("encode:\n got %x\nwant %x", got, wire)
			}
			m, n, err := ParseMessage(wire, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(wire) || !sameMessage(m, &tt.msg) {
				t.Fatalf("decode: got %+v (%d bytes), want %+v", m, n, tt.msg)
			}
			if tt.check != nil {
				tt.check(t, m.Value)
			}
		})
	}
}

func sameMessage(a, b *Message) bool {
	return a.Vendor == b.Vendor && a.Type == b.Type && a.ID == b.ID && bytes.Equal(a.Value, b.Value)
}

func TestParseMessage(t *testing.T) {
	valid := unhex(t, "00000000 00000007 00000014 00000009 01020304")
	tests := []struct {
		name     string
		data     []byte
		max      uint32
		wantN    int
		wantIs   error
		wantCode ErrorCode
	}{
		{name: "exact", data: valid, wantN: 20},
		{name: "trailing bytes are left", data: append(append([]byte{}, valid...), 0xff, 0xff), wantN: 20},
		{name: "reserved bits ignored", data: unhex(t, "ff000000 00000007 00000010 00000000"), wantN: 16},
		{name: "empty", data: nil, wantIs: ErrShort},
		{name: "partial header", data: valid[:15], wantIs: ErrShort},
		{name: "partial body", data: valid[:19], wantIs: ErrShort},
		{name: "length below header", data: unhex(t, "00000000 00000007 0000000f 00000000"), wantIs: ErrMalformed, wantCode: CodeMalformedMessage},
		{name: "length zero", data: unhex(t, "00000000 00000007 00000000 00000000"), wantIs: ErrMalformed, wantCode: CodeMalformedMessage},
		{name: "too large for max, body absent", data: unhex(t, "00000000 00000007 00001001 00000000"), max: 4096, wantIs: ErrTooLarge, wantCode: CodeInvalidMessage},
		{name: "at max", data: append(unhex(t, "00000000 00000007 00000020 00000000"), make([]byte, 16)...), max: 32, wantN: 32},
		{name: "huge length, default max", data: unhex(t, "00000000 00000007 ffffffff 00000000"), wantIs: ErrTooLarge, wantCode: CodeInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, n, err := ParseMessage(tt.data, tt.max)
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("err = %v, want %v", err, tt.wantIs)
				}
				if m != nil || n != 0 {
					t.Fatalf("got message %+v, %d bytes with an error", m, n)
				}
				var pe *Error
				if tt.wantCode != 0 {
					if !errors.As(err, &pe) || pe.Code != tt.wantCode || pe.Remote || !bytes.Equal(pe.Header, tt.data[:HeaderLen]) {
						t.Fatalf("err = %#v, want local %v with the header", err, tt.wantCode)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantN {
				t.Fatalf("consumed %d, want %d", n, tt.wantN)
			}
		})
	}
}

func TestParseMessageCopies(t *testing.T) {
	data := unhex(t, "00000000 00000007 00000014 00000009 01020304")
	m, _, err := ParseMessage(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	data[16] = 0xee
	if m.Value[0] != 1 {
		t.Fatal("Value aliases the input buffer")
	}
}

func TestAppendBinaryErrors(t *testing.T) {
	if _, err := (&Message{Vendor: 1 << 24}).AppendBinary(nil); err == nil {
		t.Error("vendor beyond 24 bits accepted")
	}
	big := make([]byte, MaxMessageSizeLimit-HeaderLen+1)
	if _, err := (&Message{Value: big}).AppendBinary(nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized value: err = %v", err)
	}
}

// countingReader counts the bytes taken from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadMessage(t *testing.T) {
	mk := func(n int) []byte {
		b, err := (&Message{Type: TypePBBatch, ID: 3, Value: bytes.Repeat([]byte{0x5a}, n)}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name     string
		data     []byte
		max      uint32
		wantLen  int
		wantErr  error
		maxRead  int // bytes the reader may consume; 0 = no check
		wantCode ErrorCode
	}{
		{name: "empty value", data: mk(0), wantLen: 0},
		{name: "small", data: mk(100), wantLen: 100},
		{name: "beyond eager allocation", data: mk(eagerBody + 1000), max: 1 << 20, wantLen: eagerBody + 1000},
		{name: "several buffer doublings", data: mk(5*eagerBody + 3), max: 1 << 20, wantLen: 5*eagerBody + 3},
		{name: "EOF after doublings", data: mk(5*eagerBody + 3)[:3*eagerBody], max: 1 << 20, wantErr: io.ErrUnexpectedEOF},
		{name: "clean EOF", data: nil, wantErr: io.EOF},
		{name: "EOF in header", data: mk(4)[:10], wantErr: io.ErrUnexpectedEOF},
		{name: "EOF in small body", data: mk(100)[:50], wantErr: io.ErrUnexpectedEOF},
		{name: "EOF in large body", data: mk(eagerBody + 1000)[:eagerBody+10], max: 1 << 20, wantErr: io.ErrUnexpectedEOF},
		{name: "oversize: body not read", data: mk(5000), max: 4096, wantErr: ErrTooLarge, maxRead: HeaderLen, wantCode: CodeInvalidMessage},
		{name: "short length", data: unhex(t, "00000000 00000007 00000004 00000000 aaaa"), wantErr: ErrMalformed, maxRead: HeaderLen, wantCode: CodeMalformedMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{r: bytes.NewReader(tt.data)}
			m, err := ReadMessage(r, tt.max)
			if tt.maxRead > 0 && r.n > tt.maxRead {
				t.Errorf("read %d bytes, want at most %d", r.n, tt.maxRead)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var pe *Error
				if tt.wantCode != 0 && (!errors.As(err, &pe) || pe.Code != tt.wantCode) {
					t.Fatalf("err = %v, want code %v", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Value) != tt.wantLen || m.ID != 3 || m.Type != TypePBBatch {
				t.Fatalf("got %v id %d with %d bytes", m.Type, m.ID, len(m.Value))
			}
			if !bytes.Equal(m.Value, tt.data[HeaderLen:]) {
				t.Fatal("value differs from the bytes sent")
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{TypeVersionRequest.String(), "Version Request"},
		{TypeSASLAuthData.String(), "SASL Authentication Data"},
		{TypePBBatch.String(), "PB-TNC Batch"},
		{TypeError.String(), "PT-TLS Error"},
		{MessageType(99).String(), "MessageType(99)"},
		{CodeMalformedMessage.String(), "Malformed Message"},
		{CodeVersionNotSupported.String(), "Version Not Supported"},
		{CodeTypeNotSupported.String(), "Type Not Supported"},
		{CodeInvalidMessage.String(), "Invalid Message"},
		{CodeSASLMechanismError.String(), "SASL Mechanism Error"},
		{CodeInvalidParameter.String(), "Invalid Parameter"},
		{ErrorCode(7).String(), "ErrorCode(7)"},
		{SASLAbort.String(), "Abort"},
		{SASLResultCode(9).String(), "SASLResultCode(9)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	hdr := unhex(t, "00000000 00000007 00000014 00000009")
	local := protoError(CodeInvalidMessage, hdr, ErrUnexpected)
	if s := local.Error(); !strings.Contains(s, "Invalid Message") || !strings.Contains(s, "PB-TNC Batch message ID 9") || strings.Contains(s, "peer") {
		t.Errorf("local: %q", s)
	}
	if !errors.Is(local, ErrUnexpected) {
		t.Error("local error does not unwrap to its cause")
	}
	remote := &Error{Code: CodeVersionNotSupported, Remote: true}
	if s := remote.Error(); !strings.Contains(s, "peer sent error: Version Not Supported") {
		t.Errorf("remote: %q", s)
	}
	vendor := &Error{Vendor: 0x5597, Code: 4, Remote: true}
	if s := vendor.Error(); !strings.Contains(s, "vendor 21911 code 4") {
		t.Errorf("vendor: %q", s)
	}
}

func TestErrorValue(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 2000)
	e := &Error{Code: CodeMalformedMessage, Header: long}
	b, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != errorValueLen+MaxErrorCopy {
		t.Fatalf("encoded %d bytes, want the copy cut to %d", len(b), MaxErrorCopy)
	}
	var d Error
	if err := d.UnmarshalBinary(append(b, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	if len(d.Header) != MaxErrorCopy || d.Code != CodeMalformedMessage || !d.Remote {
		t.Fatalf("decoded %+v", d)
	}
	if err := d.UnmarshalBinary(b[:7]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short value: err = %v", err)
	}
	if _, err := (&Error{Vendor: 1 << 24}).AppendBinary(nil); err == nil {
		t.Fatal("vendor beyond 24 bits accepted")
	}
}
