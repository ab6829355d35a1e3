package pttls

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestVersionValues(t *testing.T) {
	tests := []struct {
		name    string
		value   []byte
		want    VersionRequest
		wantErr bool
	}{
		{name: "1..1", value: []byte{0, 1, 1, 1}, want: VersionRequest{1, 1, 1}},
		{name: "reserved ignored", value: []byte{0xff, 2, 5, 3}, want: VersionRequest{2, 5, 3}},
		{name: "short", value: []byte{0, 1, 1}, wantErr: true},
		{name: "long", value: []byte{0, 1, 1, 1, 0}, wantErr: true},
		{name: "empty", value: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got VersionRequest
			err := got.UnmarshalBinary(tt.value)
			if tt.wantErr {
				var pe *Error
				if !errors.As(err, &pe) || pe.Code != CodeMalformedMessage {
					t.Fatalf("err = %v, want Malformed Message", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v", got, err)
			}
			enc, _ := got.AppendBinary(nil)
			var again VersionRequest
			if err := again.UnmarshalBinary(enc); err != nil || again != got {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
	for _, tt := range []struct {
		req  VersionRequest
		want bool
	}{
		{VersionRequest{1, 1, 1}, true},
		{VersionRequest{0, 3, 2}, true},
		{VersionRequest{2, 3, 2}, false},
		{VersionRequest{0, 0, 0}, false},
		{VersionRequest{1, 0, 1}, false},
	} {
		if got := tt.req.Includes(Version); got != tt.want {
			t.Errorf("%+v.Includes(1) = %v", tt.req, got)
		}
	}
	var r VersionResponse
	if err := r.UnmarshalBinary([]byte{9, 9, 9, 1}); err != nil || r.Version != 1 {
		t.Errorf("response: %+v, %v", r, err)
	}
	if err := r.UnmarshalBinary([]byte{1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short response: %v", err)
	}
}

func TestSASLMechanisms(t *testing.T) {
	tests := []struct {
		name     string
		value    []byte
		want     []string
		wantCode ErrorCode
	}{
		{name: "empty", value: nil, want: nil},
		{name: "one", value: []byte("\x05PLAIN"), want: []string{"PLAIN"}},
		{name: "two", value: []byte("\x05PLAIN\x0dSCRAM-SHA-256"), want: []string{"PLAIN", "SCRAM-SHA-256"}},
		{name: "reserved bits ignored", value: []byte("\xe5PLAIN"), want: []string{"PLAIN"}},
		{name: "overrun", value: []byte("\x06PLAIN"), wantCode: CodeMalformedMessage},
		{name: "zero length name", value: []byte("\x00"), wantCode: CodeInvalidParameter},
		{name: "lower case", value: []byte("\x05plain"), wantCode: CodeInvalidParameter},
		{name: "NUL in name", value: []byte("\x05PL\x00IN"), wantCode: CodeInvalidParameter},
		{name: "name over 20", value: append([]byte{21}, strings.Repeat("A", 21)...), wantCode: CodeInvalidParameter},
		{name: "too many", value: bytes.Repeat([]byte("\x01A"), MaxSASLMechanisms+1), wantCode: CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SASLMechanisms
			err := got.UnmarshalBinary(tt.value)
			if tt.wantCode != 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want %v", err, tt.wantCode)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got.Names, tt.want) {
				t.Fatalf("got %q, %v", got.Names, err)
			}
			enc, err := got.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			var again SASLMechanisms
			if err := again.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(again.Names, got.Names) {
				t.Fatalf("round trip %q, %v", again.Names, err)
			}
		})
	}
	if _, err := (SASLMechanisms{Names: []string{"bad name"}}).AppendBinary(nil); err == nil {
		t.Error("invalid name encoded")
	}
}

func TestSASLMechanismSelection(t *testing.T) {
	tests := []struct {
		name     string
		value    []byte
		want     SASLMechanismSelection
		wantCode ErrorCode
	}{
		{name: "no initial", value: []byte("\x05PLAIN"), want: SASLMechanismSelection{Name: "PLAIN"}},
		{name: "initial", value: []byte("\x05PLAIN\x00u\x00p"), want: SASLMechanismSelection{Name: "PLAIN", Initial: []byte("\x00u\x00p")}},
		{name: "empty", value: nil, wantCode: CodeMalformedMessage},
		{name: "overrun", value: []byte("\x09PLAIN"), wantCode: CodeMalformedMessage},
		{name: "bad name", value: []byte("\x02a!"), wantCode: CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SASLMechanismSelection
			err := got.UnmarshalBinary(tt.value)
			if tt.wantCode != 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want %v", err, tt.wantCode)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v", got, err)
			}
			enc, _ := got.AppendBinary(nil)
			if !bytes.Equal(enc, tt.value) {
				t.Fatalf("re-encoded %x, want %x", enc, tt.value)
			}
		})
	}
}

// The result code width differs between implementations: 16 bits in the
// RFC figure, 32 or 8 bits in some peers. All must decode.
func TestSASLResultWidths(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
		want  SASLResult
		bad   bool
	}{
		{name: "16-bit success", value: []byte{0, 0}, want: SASLResult{Code: SASLSuccess}},
		{name: "16-bit failure", value: []byte{0, 1}, want: SASLResult{Code: SASLFailure}},
		{name: "16-bit abort", value: []byte{0, 2}, want: SASLResult{Code: SASLAbort}},
		{name: "16-bit success with data", value: []byte{0, 0, 'o', 'k'}, want: SASLResult{Code: SASLSuccess, Data: []byte("ok")}},
		{name: "16-bit success with one byte", value: []byte{0, 0, 9}, want: SASLResult{Code: SASLSuccess, Data: []byte{9}}},
		{name: "16-bit unknown code", value: []byte{1, 0}, want: SASLResult{Code: 256}},
		{name: "32-bit success", value: []byte{0, 0, 0, 0}, want: SASLResult{Code: SASLSuccess}},
		{name: "32-bit failure", value: []byte{0, 0, 0, 1}, want: SASLResult{Code: SASLFailure}},
		{name: "32-bit mechanism failure", value: []byte{0, 0, 0, 3}, want: SASLResult{Code: SASLMechanismFailure}},
		{name: "32-bit failure with data stays a failure", value: []byte{0, 0, 0, 1, 'x'}, want: SASLResult{Code: SASLFailure, Data: []byte("x")}},
		{name: "8-bit success", value: []byte{0}, want: SASLResult{Code: SASLSuccess}},
		{name: "8-bit abort", value: []byte{2}, want: SASLResult{Code: SASLAbort}},
		{name: "empty", value: nil, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SASLResult
			err := got.UnmarshalBinary(tt.value)
			if tt.bad {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want malformed", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			enc, err := got.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) < 2 || SASLResultCode(enc[0])<<8|SASLResultCode(enc[1]) != got.Code {
				t.Fatalf("encoded %x: not the 16-bit RFC form", enc)
			}
			var again SASLResult
			if err := again.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip %+v, %v", again, err)
			}
		})
	}
	for _, data := range [][]byte{{0, 0}, {0, 3}, {0, 1, 7}} {
		if _, err := (SASLResult{Code: SASLSuccess, Data: data}).AppendBinary(nil); err == nil {
			t.Errorf("ambiguous success data %x encoded", data)
		}
	}
}

func TestPlain(t *testing.T) {
	c := &PlainClient{Authzid: "ops", Username: "alice", Password: "secret"}
	msg, err := c.Start()
	if err != nil || string(msg) != "ops\x00alice\x00secret" {
		t.Fatalf("Start = %q, %v", msg, err)
	}
	if _, err := c.Next([]byte("x")); err == nil {
		t.Error("non-empty challenge accepted")
	}
	if again, err := c.Next(nil); err != nil || !bytes.Equal(again, msg) {
		t.Errorf("empty challenge: %q, %v", again, err)
	}
	for _, bad := range []*PlainClient{
		{Username: "", Password: "p"},
		{Username: "u", Password: ""},
		{Username: "a\x00b", Password: "p"},
		{Username: "u", Password: strings.Repeat("p", 256)},
		{Username: "\xff", Password: "p"},
	} {
		if _, err := bad.Start(); err == nil {
			t.Errorf("%q/%q accepted", bad.Username, bad.Password)
		}
	}

	var seen []string
	srv := &PlainServer{Verify: func(_ context.Context, z, u, p string) (string, error) {
		seen = []string{z, u, p}
		if p != "secret" {
			return "", errors.New("no")
		}
		return "", nil
	}}
	tests := []struct {
		name     string
		steps    [][]byte
		wantDone bool
		wantID   string
		wantErr  bool
		wantSeen []string
	}{
		{name: "initial response", steps: [][]byte{msg}, wantDone: true, wantID: "alice", wantSeen: []string{"ops", "alice", "secret"}},
		{name: "empty authzid", steps: [][]byte{[]byte("\x00bob\x00secret")}, wantDone: true, wantID: "bob"},
		{name: "after empty challenge", steps: [][]byte{nil, msg}, wantDone: true, wantID: "alice"},
		{name: "wrong password", steps: [][]byte{[]byte("\x00alice\x00guess")}, wantErr: true},
		{name: "two empty responses", steps: [][]byte{nil, nil}, wantErr: true},
		{name: "one NUL", steps: [][]byte{[]byte("alice\x00secret")}, wantErr: true},
		{name: "three NULs", steps: [][]byte{[]byte("\x00alice\x00sec\x00ret")}, wantErr: true},
		{name: "empty user", steps: [][]byte{[]byte("\x00\x00secret")}, wantErr: true},
		{name: "empty password", steps: [][]byte{[]byte("\x00alice\x00")}, wantErr: true},
		{name: "bad UTF-8", steps: [][]byte{[]byte("\x00\xc3\x00secret")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			s := srv.Start(context.Background())
			var done bool
			var id string
			var err error
			for i, step := range tt.steps {
				var chal []byte
				chal, done, id, err = s.Next(step)
				if err != nil || done {
					break
				}
				if i == len(tt.steps)-1 {
					t.Fatalf("not done after all steps; challenge %q", chal)
				}
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil || done != tt.wantDone || id != tt.wantID {
				t.Fatalf("done %v id %q err %v", done, id, err)
			}
			if tt.wantSeen != nil && !reflect.DeepEqual(seen, tt.wantSeen) {
				t.Fatalf("Verify saw %q", seen)
			}
		})
	}
	if _, _, _, err := (&PlainServer{}).Start(context.Background()).Next(msg); err == nil {
		t.Error("PlainServer without Verify accepted credentials")
	}
}
