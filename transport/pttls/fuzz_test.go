package pttls

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
	"time"
)

const fuzzMax = 4096

// FuzzParseMessage checks that ParseMessage never panics, that what it
// accepts re-encodes to the same bytes (bar the reserved bits) and parses
// again to the same message, that ReadMessage agrees with it, and that each
// IETF message value it finds round-trips through its codec.
func FuzzParseMessage(f *testing.F) {
	for _, m := range []*Message{
		{Type: TypeVersionRequest, Value: []byte{0, 1, 1, 1}},
		{Type: TypeSASLMechanisms, ID: 1, Value: []byte("\x05PLAIN")},
		{Type: TypeSASLResult, ID: 2, Value: []byte{0, 0}},
		{Type: TypeError, Value: []byte{0, 0, 0, 0, 0, 0, 0, 4}},
	} {
		b, _ := m.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, n, err := ParseMessage(data, fuzzMax)
		r, rerr := ReadMessage(bytes.NewReader(data), fuzzMax)
		if err != nil {
			if m != nil || n != 0 {
				t.Fatalf("message %+v and %d bytes with error %v", m, n, err)
			}
			var pe *Error
			switch {
			case errors.Is(err, ErrShort):
				if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
					t.Fatalf("ParseMessage: short; ReadMessage: %v", rerr)
				}
			case errors.As(err, &pe):
				if pe.Remote || len(pe.Header) != HeaderLen || !bytes.Equal(pe.Header, data[:HeaderLen]) {
					t.Fatalf("bad local error %#v", pe)
				}
				if !errors.As(rerr, &pe) {
					t.Fatalf("ParseMessage: %v; ReadMessage: %v", err, rerr)
				}
			default:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if n < HeaderLen || n > len(data) || n > fuzzMax || n != HeaderLen+len(m.Value) {
			t.Fatalf("consumed %d of %d bytes for a %d-byte value", n, len(data), len(m.Value))
		}
		if rerr != nil || !sameMessage(r, m) {
			t.Fatalf("ReadMessage %+v, %v; ParseMessage %+v", r, rerr, m)
		}
		enc, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if enc[0] != 0 || !bytes.Equal(enc[1:], data[1:n]) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", enc, data[:n])
		}
		m2, n2, err := ParseMessage(enc, fuzzMax)
		if err != nil || n2 != n || !sameMessage(m2, m) {
			t.Fatalf("second parse %+v, %d, %v", m2, n2, err)
		}
		if m.Vendor == VendorIETF {
			checkValueRoundTrip(t, m.Type, m.Value)
		}
	})
}

// valueCodec is what every message value type implements.
type valueCodec interface {
	AppendBinary([]byte) ([]byte, error)
	UnmarshalBinary([]byte) error
}

// checkValueRoundTrip decodes value with the codec for typ and, if that
// succeeds, checks that encode → decode gives the same value.
func checkValueRoundTrip(t *testing.T, typ MessageType, value []byte) {
	t.Helper()
	var first, second valueCodec
	switch typ {
	case TypeVersionRequest:
		first, second = new(VersionRequest), new(VersionRequest)
	case TypeVersionResponse:
		first, second = new(VersionResponse), new(VersionResponse)
	case TypeSASLMechanisms:
		first, second = new(SASLMechanisms), new(SASLMechanisms)
	case TypeSASLMechanismSelection:
		first, second = new(SASLMechanismSelection), new(SASLMechanismSelection)
	case TypeSASLResult:
		first, second = new(SASLResult), new(SASLResult)
	case TypeError:
		first, second = new(Error), new(Error)
	default:
		return
	}
	if err := first.UnmarshalBinary(value); err != nil {
		var pe *Error
		if !errors.As(err, &pe) || pe.Remote {
			t.Fatalf("%v value: error %v is not a local *Error", typ, err)
		}
		return
	}
	enc, err := first.AppendBinary(nil)
	if err != nil {
		t.Fatalf("%v: decoded %+v does not encode: %v", typ, first, err)
	}
	if err := second.UnmarshalBinary(enc); err != nil {
		t.Fatalf("%v: re-encoded %x does not decode: %v", typ, enc, err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("%v round trip:\n %+v\n %+v", typ, first, second)
	}
}

// FuzzServerHandshake feeds arbitrary bytes, as the client side of an
// in-memory connection, to ServerHandshake with and without SASL. It must
// neither panic nor hang, and a negotiation it accepts must carry the
// identity SASL established.
func FuzzServerHandshake(f *testing.F) {
	vr := mustMsg(f, TypeVersionRequest, 0, []byte{0, 1, 1, 1})
	f.Add(false, vr)
	f.Add(true, append(append([]byte{}, vr...), mustMsg(f, TypeSASLMechanismSelection, 1, []byte("\x05PLAIN\x00alice\x00secret"))...))
	f.Add(true, []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"))
	f.Fuzz(func(t *testing.T, sasl bool, input []byte) {
		r := serverOnInput(t, sasl, input)
		if r.err != nil {
			return
		}
		defer r.c.Close()
		want := ""
		if sasl {
			want = "alice"
		}
		if r.c.Identity() != want {
			t.Fatalf("negotiated with identity %q, want %q", r.c.Identity(), want)
		}
	})
}

// serverOnInput runs ServerHandshake over net.Pipe with input as all the
// client ever sends; with sasl, PLAIN is required and accepts alice/secret.
func serverOnInput(t *testing.T, sasl bool, input []byte) result {
	t.Helper()
	cfg := &ServerConfig{HandshakeTimeout: 2 * time.Second}
	if sasl {
		cfg.SASL = []ServerMechanism{&PlainServer{Verify: func(_ context.Context, _, user, pass string) (string, error) {
			if user == "alice" && pass == "secret" {
				return "", nil
			}
			return "", errors.New("bad credentials")
		}}}
		cfg.RequireSASL = true
	}
	// Two pipes, one per direction, so that the client can end its input
	// (the server then reads EOF) and still take the server's replies.
	inC, inS := net.Pipe()
	outS, outC := net.Pipe()
	sc := &splitConn{Conn: inS, out: outS}
	done := make(chan result, 1)
	go func() {
		c, err := ServerHandshake(context.Background(), sc, cfg)
		done <- result{c, err}
	}()
	go func() { _, _ = io.Copy(io.Discard, outC) }()
	go func() {
		_, _ = inC.Write(input)
		_ = inC.Close()
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("ServerHandshake hangs")
	}
	return result{}
}

// splitConn reads from its embedded net.Conn and writes to out.
type splitConn struct {
	net.Conn
	out net.Conn
}

func (s *splitConn) Write(b []byte) (int, error) { return s.out.Write(b) }

func (s *splitConn) SetDeadline(t time.Time) error {
	return errors.Join(s.Conn.SetDeadline(t), s.out.SetDeadline(t))
}

func (s *splitConn) SetWriteDeadline(t time.Time) error { return s.out.SetWriteDeadline(t) }

func (s *splitConn) Close() error { return errors.Join(s.Conn.Close(), s.out.Close()) }

func mustMsg(tb testing.TB, typ MessageType, id uint32, value []byte) []byte {
	tb.Helper()
	b, err := (&Message{Type: typ, ID: id, Value: value}).AppendBinary(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
