package pbtnc

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var ctx = context.Background()

func fullResult() Result {
	return Result{
		Assessment:     ptr(AssessmentMajorNonCompliance),
		Recommendation: RecommendationQuarantined,
		Remediation: []RemediationParameters{
			{Type: RemediationURI, URI: "https://remediate.example/os"},
			{Type: RemediationString, Text: "install the kernel update", Lang: "en"},
		},
		Reasons: []ReasonString{{Reason: "kernel too old", Lang: "en"}},
		PA:      []PA{{Subtype: SubtypeOS, CollectorID: 1, ValidatorID: 7, Body: []byte("remediation instructions")}},
	}
}

func bodies(pas []PA) []string {
	var out []string
	for _, p := range pas {
		out = append(out, string(p.Body))
	}
	return out
}

// TestFullSession drives a client and a server in memory through a
// multi-round handshake, a CRETRY and an SRETRY re-handshake and CLOSE.
func TestFullSession(t *testing.T) {
	imc := &testIMC{}
	imv := &testIMV{rounds: 3, result: fullResult()}
	c := NewClient(imc, Config{Language: "en, fr;q=0.5"})
	s := NewServer(imv, Config{})

	first, err := c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := exchange(t, c, s, first)
	want := []BatchType{BatchCDATA, BatchSDATA, BatchCDATA, BatchSDATA, BatchCDATA, BatchSDATA, BatchCDATA, BatchResult}
	if !slices.Equal(seen, want) {
		t.Fatalf("wire = %v, want %v", seen, want)
	}
	if c.State() != StateDecided || s.State() != StateDecided {
		t.Fatalf("states client %v server %v, want Decided", c.State(), s.State())
	}
	if s.Language() != "en, fr;q=0.5" {
		t.Fatalf("server language = %q", s.Language())
	}
	if len(imc.results) != 1 || !reflect.DeepEqual(imc.results[0], fullResult()) {
		t.Fatalf("client got result %+v\nwant %+v", imc.results, fullResult())
	}
	if !reflect.DeepEqual(c.Result(), s.Result()) {
		t.Fatalf("client result %+v != server result %+v", c.Result(), s.Result())
	}
	if got := bodies(imv.received[0]); !slices.Equal(got, []string{"begin-1"}) {
		t.Fatalf("first CDATA carried %q", got)
	}
	if got := bodies(imv.received[3]); !slices.Equal(got, []string{"ack-srv-1-3"}) {
		t.Fatalf("fourth CDATA carried %q", got)
	}
	if got := bodies(imc.received[2]); !slices.Equal(got, []string{"srv-1-3"}) {
		t.Fatalf("third SDATA carried %q", got)
	}
	if !imv.received[1][0].Exclusive || imv.received[1][0].CollectorID != 1 {
		t.Fatalf("PB-PA header fields lost: %+v", imv.received[1][0])
	}

	// CRETRY: the client asks for a new handshake.
	retry, err := c.Retry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	imv.received, imc.received = nil, nil
	seen = exchange(t, c, s, retry)
	want = []BatchType{BatchCRetry, BatchSDATA, BatchCDATA, BatchSDATA, BatchCDATA, BatchSDATA, BatchCDATA, BatchResult}
	if !slices.Equal(seen, want) {
		t.Fatalf("CRETRY wire = %v, want %v", seen, want)
	}
	if imv.begins != 2 || imc.begins != 2 {
		t.Fatalf("begins after CRETRY: server %d client %d", imv.begins, imc.begins)
	}
	// The first CDATA of the new handshake carries Begin's and Receive's
	// messages.
	if got := bodies(imv.received[1]); !slices.Equal(got, []string{"begin-2", "ack-srv-2-1"}) {
		t.Fatalf("first CDATA after CRETRY carried %q", got)
	}

	// SRETRY: the server asks for a new handshake.
	sretry, err := s.Retry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.State() != StateClientWorking {
		t.Fatalf("server state after SRETRY = %v", s.State())
	}
	imv.received = nil
	seen = exchange(t, c, s, nil)
	out, err := c.Step(ctx, sretry)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, exchange(t, c, s, out)...)
	want = []BatchType{BatchCDATA, BatchSDATA, BatchCDATA, BatchSDATA, BatchCDATA, BatchSDATA, BatchCDATA, BatchResult}
	if !slices.Equal(seen, want) {
		t.Fatalf("SRETRY wire = %v, want %v", seen, want)
	}
	if imv.begins != 3 || imc.begins != 3 || len(imc.results) != 3 {
		t.Fatalf("after SRETRY: server begins %d client begins %d results %d", imv.begins, imc.begins, len(imc.results))
	}
	if got := bodies(imv.received[0]); !slices.Equal(got, []string{"begin-3"}) {
		t.Fatalf("first CDATA after SRETRY carried %q", got)
	}

	// CLOSE.
	closing := c.Close()
	if c.State() != StateEnd {
		t.Fatalf("client state after Close = %v", c.State())
	}
	if out, err := s.Step(ctx, closing); out != nil || err != nil {
		t.Fatalf("server Step(CLOSE) = %x, %v", out, err)
	}
	if s.State() != StateEnd {
		t.Fatalf("server state after CLOSE = %v", s.State())
	}
	if out, err := s.Step(ctx, first); out != nil || !errors.Is(err, ErrClosed) {
		t.Fatalf("Step after End = %x, %v", out, err)
	}
}

func TestCloseAfterResult(t *testing.T) {
	imc := &testIMC{}
	c := NewClient(imc, Config{CloseAfterResult: true})
	s := NewServer(&testIMV{rounds: 1, result: Result{Recommendation: RecommendationAllowed}}, Config{})
	first, _ := c.Start(ctx)
	seen := exchange(t, c, s, first)
	want := []BatchType{BatchCDATA, BatchSDATA, BatchCDATA, BatchResult, BatchClose}
	if !slices.Equal(seen, want) {
		t.Fatalf("wire = %v, want %v", seen, want)
	}
	if c.State() != StateEnd || s.State() != StateEnd {
		t.Fatalf("states %v %v", c.State(), s.State())
	}
	// RFC 5793 requires an Assessment-Result in every RESULT batch.
	r := c.Result()
	if r == nil || r.Assessment == nil || *r.Assessment != AssessmentDontKnow || r.Recommendation != RecommendationAllowed {
		t.Fatalf("result = %+v", r)
	}
}

// TestCRetryAnsweredByResult: the server may answer CRETRY with RESULT.
func TestCRetryAnsweredByResult(t *testing.T) {
	imc := &testIMC{}
	imv := &testIMV{rounds: 0, result: Result{Recommendation: RecommendationDenied}}
	c := NewClient(imc, Config{})
	s := NewServer(imv, Config{})
	first, _ := c.Start(ctx)
	exchange(t, c, s, first)
	retry, _ := c.Retry(ctx)
	seen := exchange(t, c, s, retry)
	if !slices.Equal(seen, []BatchType{BatchCRetry, BatchResult}) {
		t.Fatalf("wire = %v", seen)
	}
	if imc.begins != 1 || imv.begins != 2 || len(imc.results) != 2 || c.State() != StateDecided {
		t.Fatalf("client begins %d server begins %d results %d state %v", imc.begins, imv.begins, len(imc.results), c.State())
	}
}

// TestServerSpeaksFirst: RFC 5793 §3.2 lets the server start with SDATA.
func TestServerSpeaksFirst(t *testing.T) {
	imc := &testIMC{}
	c := NewClient(imc, Config{Language: "de"})
	sdata := raw(t, true, BatchSDATA, PA{Subtype: SubtypeOS, ValidatorID: 5, Body: []byte("hello")}.Message())
	out, err := c.Step(ctx, sdata)
	if err != nil {
		t.Fatal(err)
	}
	_, cont, pe := parseBatch(out, 0)
	if pe != nil {
		t.Fatal(pe)
	}
	if got := bodies(cont.pas); !slices.Equal(got, []string{"begin-1", "ack-hello"}) || string(cont.lang) != "de" {
		t.Fatalf("CDATA carried %q lang %q", got, cont.lang)
	}
	if c.State() != StateServerWorking {
		t.Fatalf("state = %v", c.State())
	}
}

// serverIn returns a server driven into the given state, and its handler.
func serverIn(t *testing.T, st State) (*Server, *testIMV) {
	t.Helper()
	imv := &testIMV{rounds: 1, result: fullResult()}
	s := NewServer(imv, Config{})
	cdata := raw(t, false, BatchCDATA)
	switch st {
	case StateInit:
	case StateClientWorking:
		if _, err := s.Step(ctx, cdata); err != nil {
			t.Fatal(err)
		}
	case StateDecided:
		imv.rounds = 0
		if _, err := s.Step(ctx, cdata); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("cannot drive a server into %v", st)
	}
	if s.State() != st {
		t.Fatalf("server in %v, want %v", s.State(), st)
	}
	return s, imv
}

// clientIn returns a client driven into the given state.
func clientIn(t *testing.T, st State) *Client {
	t.Helper()
	c := NewClient(&testIMC{}, Config{})
	switch st {
	case StateInit:
	case StateServerWorking:
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
	case StateDecided:
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Step(ctx, raw(t, true, BatchResult, AssessmentCompliant.Message())); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("cannot drive a client into %v", st)
	}
	if c.State() != st {
		t.Fatalf("client in %v, want %v", c.State(), st)
	}
	return c
}

// TestServerBatchTypes sends every batch type (with the client's D bit) to
// a server in every reachable state: the RFC 5793 §3.2 transitions work,
// everything else is a fatal Unexpected Batch Type.
func TestServerBatchTypes(t *testing.T) {
	allowed := map[State][]BatchType{
		StateInit:          {BatchCDATA},
		StateClientWorking: {BatchCDATA, BatchCRetry},
		StateDecided:       {BatchCRetry},
	}
	for st, ok := range allowed {
		for bt := BatchCDATA; bt < BatchClose; bt++ {
			t.Run(st.String()+"/"+bt.String(), func(t *testing.T) {
				s, _ := serverIn(t, st)
				out, err := s.Step(ctx, raw(t, false, bt))
				if slices.Contains(ok, bt) {
					if err != nil {
						t.Fatalf("legal batch rejected: %v", err)
					}
					b, perr := ParseBatch(out, 0)
					if perr != nil || !b.FromServer || (b.Type != BatchSDATA && b.Type != BatchResult) {
						t.Fatalf("reply %+v, %v", b, perr)
					}
					return
				}
				expectFatal(t, out, err, true, ErrUnexpectedBatchType, 0)
				if s.State() != StateEnd {
					t.Fatalf("state = %v, want End", s.State())
				}
			})
		}
	}
}

// TestClientBatchTypes is TestServerBatchTypes for the client.
func TestClientBatchTypes(t *testing.T) {
	allowed := map[State][]BatchType{
		StateInit:          {BatchSDATA},
		StateServerWorking: {BatchSDATA, BatchResult, BatchSRetry},
		StateDecided:       {BatchSRetry},
	}
	for st, ok := range allowed {
		for bt := BatchCDATA; bt < BatchClose; bt++ {
			t.Run(st.String()+"/"+bt.String(), func(t *testing.T) {
				c := clientIn(t, st)
				out, err := c.Step(ctx, raw(t, true, bt))
				if slices.Contains(ok, bt) {
					if err != nil {
						t.Fatalf("legal batch rejected: %v", err)
					}
					if bt == BatchResult {
						if out != nil || c.State() != StateDecided {
							t.Fatalf("RESULT: reply %x state %v", out, c.State())
						}
						return
					}
					b, perr := ParseBatch(out, 0)
					if perr != nil || b.FromServer || b.Type != BatchCDATA {
						t.Fatalf("reply %+v, %v", b, perr)
					}
					return
				}
				expectFatal(t, out, err, false, ErrUnexpectedBatchType, 0)
				if c.State() != StateEnd {
					t.Fatalf("state = %v, want End", c.State())
				}
			})
		}
	}
}

func TestWrongDirection(t *testing.T) {
	s, _ := serverIn(t, StateInit)
	out, err := s.Step(ctx, raw(t, true, BatchCDATA))
	expectFatal(t, out, err, true, ErrInvalidParameter, 1)

	c := clientIn(t, StateServerWorking)
	out, err = c.Step(ctx, raw(t, false, BatchSDATA))
	expectFatal(t, out, err, false, ErrInvalidParameter, 1)
}

func TestVersionNotSupported(t *testing.T) {
	for _, version := range []byte{1, 3, '<'} {
		s, _ := serverIn(t, StateInit)
		in := raw(t, false, BatchCDATA)
		in[0] = version
		out, err := s.Step(ctx, in)
		e := expectFatal(t, out, err, true, ErrVersionNotSupported, 0)
		if e.BadVersion != version || e.MaxVersion != Version || e.MinVersion != Version {
			t.Fatalf("version error = %+v", e)
		}
		if s.State() != StateEnd {
			t.Fatalf("state %v", s.State())
		}
	}
}

func TestNoSkipUnknownMessage(t *testing.T) {
	s, imv := serverIn(t, StateInit)
	pa := PA{Subtype: SubtypeOS, Body: []byte("x")}.Message()
	out, err := s.Step(ctx, raw(t, false, BatchCDATA, pa, Message{NoSkip: true, Vendor: 0x5597, Type: 0x77}))
	e := expectFatal(t, out, err, true, ErrUnsupportedMandatoryMessage, 0)
	if !bytes.Equal(e.Header, unhex(t, "80 005597 00000077")) {
		t.Fatalf("header = % x", e.Header)
	}
	if len(imv.received) != 0 || imv.begins != 0 {
		t.Fatal("handler saw a batch holding an unsupported mandatory message")
	}

	// Without NOSKIP the unknown message is skipped.
	s, imv = serverIn(t, StateInit)
	out, err = s.Step(ctx, raw(t, false, BatchCDATA, Message{Vendor: 0x5597, Type: 0x77, Value: []byte("?")}, pa))
	if err != nil || out == nil {
		t.Fatalf("Step = %x, %v", out, err)
	}
	if len(imv.received) != 1 || !slices.Equal(bodies(imv.received[0]), []string{"x"}) {
		t.Fatalf("handler received %+v", imv.received)
	}
}

func TestMaxRounds(t *testing.T) {
	// Server cap.
	imv := &testIMV{rounds: 100}
	s := NewServer(imv, Config{MaxRounds: 3})
	cdata := raw(t, false, BatchCDATA)
	for i := 0; i < 3; i++ {
		if _, err := s.Step(ctx, cdata); err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
	}
	out, err := s.Step(ctx, cdata)
	expectFatal(t, out, err, true, ErrLocalError, 0)
	if !errors.Is(err, ErrTooManyRounds) || len(imv.received) != 3 {
		t.Fatalf("error %v, handler rounds %d", err, len(imv.received))
	}

	// Client cap, also in a full exchange; SRETRY resets the count.
	c := NewClient(&testIMC{}, Config{MaxRounds: 2})
	c.Start(ctx)
	sdata := raw(t, true, BatchSDATA)
	for i := 0; i < 2; i++ {
		if _, err := c.Step(ctx, sdata); err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
	}
	if _, err := c.Step(ctx, raw(t, true, BatchSRetry)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Step(ctx, sdata); err != nil {
			t.Fatalf("round %d after SRETRY: %v", i+1, err)
		}
	}
	out, err = c.Step(ctx, sdata)
	expectFatal(t, out, err, false, ErrLocalError, 0)
	if !errors.Is(err, ErrTooManyRounds) {
		t.Fatalf("error %v", err)
	}
}

func TestMaxBatchSize(t *testing.T) {
	big := PA{Subtype: SubtypeOS, Body: make([]byte, 200)}.Message()

	// Received batch too large.
	s := NewServer(&testIMV{}, Config{MaxBatchSize: 100})
	out, err := s.Step(ctx, raw(t, false, BatchCDATA, big))
	expectFatal(t, out, err, true, ErrInvalidParameter, 4)

	c := NewClient(&testIMC{}, Config{MaxBatchSize: EAPMaxBatchSize})
	c.Start(ctx)
	out, err = c.Step(ctx, raw(t, true, BatchSDATA, PA{Body: make([]byte, EAPMaxBatchSize)}.Message()))
	expectFatal(t, out, err, false, ErrInvalidParameter, 4)

	// Batch to send too large.
	s = NewServer(&testIMV{bigReply: 200}, Config{MaxBatchSize: 100})
	out, err = s.Step(ctx, raw(t, false, BatchCDATA))
	expectFatal(t, out, err, true, ErrLocalError, 0)
	if !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("error %v", err)
	}
	if len(out) > 100 {
		t.Fatalf("CLOSE of %d bytes exceeds the limit", len(out))
	}

	c = NewClient(&testIMC{}, Config{MaxBatchSize: 100})
	c.Start(ctx)
	out, err = c.Step(ctx, raw(t, true, BatchSDATA, PA{Body: make([]byte, 66)}.Message()))
	expectFatal(t, out, err, false, ErrLocalError, 0)
	if !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("error %v", err)
	}
}

func TestPeerError(t *testing.T) {
	fatal := Error{Fatal: true, Code: ErrInvalidParameter, Offset: 12}

	// CLOSE carrying a fatal PB-Error.
	s, _ := serverIn(t, StateClientWorking)
	out, err := s.Step(ctx, raw(t, false, BatchClose, Error{Code: ErrLocalError}.Message(), fatal.Message()))
	if out != nil || !errors.Is(err, ErrPeerError) {
		t.Fatalf("Step = %x, %v", out, err)
	}
	var e *Error
	if !errors.As(err, &e) || !reflect.DeepEqual(*e, fatal) {
		t.Fatalf("peer error = %+v, want %+v", e, fatal)
	}
	if msg := err.Error(); msg != "pbtnc: peer sent fatal Invalid Parameter at offset 12" {
		t.Fatalf("error text %q", msg)
	}
	if s.State() != StateEnd {
		t.Fatalf("state %v", s.State())
	}

	// Non-fatal PB-Error in CDATA: reported, the handshake goes on.
	s, imv := serverIn(t, StateClientWorking)
	out, err = s.Step(ctx, raw(t, false, BatchCDATA, Error{Code: ErrLocalError}.Message()))
	if !errors.Is(err, ErrPeerError) || !errors.Is(err, &Error{Code: ErrLocalError}) {
		t.Fatalf("error %v", err)
	}
	if b, perr := ParseBatch(out, 0); perr != nil || b.Type != BatchResult || s.State() != StateDecided || len(imv.received) != 2 {
		t.Fatalf("reply %+v %v state %v", b, perr, s.State())
	}

	// Fatal PB-Error outside CLOSE: the session ends with an empty CLOSE.
	c := clientIn(t, StateServerWorking)
	out, err = c.Step(ctx, raw(t, true, BatchSDATA, fatal.Message()))
	if !errors.Is(err, ErrPeerError) || c.State() != StateEnd {
		t.Fatalf("error %v state %v", err, c.State())
	}
	if b, perr := ParseBatch(out, 0); perr != nil || b.Type != BatchClose || len(b.Messages) != 0 {
		t.Fatalf("reply %+v %v", b, perr)
	}

	// A fatal error one side detects reaches the other through CLOSE.
	s, _ = serverIn(t, StateInit)
	c = clientIn(t, StateServerWorking)
	closing, _ := s.Step(ctx, raw(t, true, BatchCDATA))
	_, err = c.Step(ctx, closing)
	if !errors.As(err, &e) || e.Code != ErrInvalidParameter || e.Offset != 1 || c.State() != StateEnd {
		t.Fatalf("client saw %v, state %v", err, c.State())
	}

	// A malformed CLOSE still ends the session, without a reply.
	s, _ = serverIn(t, StateClientWorking)
	bad := raw(t, false, BatchClose, Message{Type: 100, Value: []byte("x")})
	bad[19] = 5 // message length below the header size
	out, err = s.Step(ctx, bad)
	if out != nil || err == nil || s.State() != StateEnd {
		t.Fatalf("Step = %x, %v, state %v", out, err, s.State())
	}
}

func TestHandlerErrors(t *testing.T) {
	boom := errors.New("boom")
	check := func(t *testing.T, out []byte, err error, fromServer bool) {
		t.Helper()
		expectFatal(t, out, err, fromServer, ErrLocalError, 0)
		if !errors.Is(err, ErrHandler) || !errors.Is(err, boom) {
			t.Fatalf("error %v does not wrap ErrHandler and the cause", err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "pbtnc: ") || !strings.HasSuffix(msg, "boom (sent fatal Local Error)") {
			t.Fatalf("error text %q", msg)
		}
	}
	t.Run("server BeginHandshake", func(t *testing.T) {
		s := NewServer(&testIMV{failBegin: boom}, Config{})
		out, err := s.Step(ctx, raw(t, false, BatchCDATA))
		check(t, out, err, true)
	})
	t.Run("server Receive", func(t *testing.T) {
		s := NewServer(&testIMV{failReceive: boom}, Config{})
		out, err := s.Step(ctx, raw(t, false, BatchCDATA))
		check(t, out, err, true)
	})
	t.Run("server BeginHandshake on CRETRY", func(t *testing.T) {
		s, imv := serverIn(t, StateDecided)
		imv.failBegin = boom
		out, err := s.Step(ctx, raw(t, false, BatchCRetry))
		check(t, out, err, true)
	})
	t.Run("server unencodable result", func(t *testing.T) {
		s := NewServer(&testIMV{result: Result{Recommendation: 9}}, Config{})
		out, err := s.Step(ctx, raw(t, false, BatchCDATA))
		expectFatal(t, out, err, true, ErrLocalError, 0)
		if !errors.Is(err, ErrEncode) || s.Result() != nil {
			t.Fatalf("error %v, result %+v", err, s.Result())
		}
	})
	t.Run("client Begin", func(t *testing.T) {
		c := NewClient(&testIMC{failBegin: boom}, Config{})
		out, err := c.Start(ctx)
		check(t, out, err, false)
	})
	t.Run("client Receive", func(t *testing.T) {
		c := NewClient(&testIMC{failReceive: boom}, Config{})
		c.Start(ctx)
		out, err := c.Step(ctx, raw(t, true, BatchSDATA))
		check(t, out, err, false)
	})
	t.Run("client Result", func(t *testing.T) {
		c := NewClient(&testIMC{failResult: boom}, Config{})
		c.Start(ctx)
		out, err := c.Step(ctx, raw(t, true, BatchResult, AssessmentCompliant.Message()))
		check(t, out, err, false)
		if c.Result() == nil {
			t.Fatal("result not recorded")
		}
	})
}

func TestUsageErrors(t *testing.T) {
	c := NewClient(&testIMC{}, Config{})
	if _, err := c.Retry(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("Retry in Init: %v", err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("second Start: %v", err)
	}
	c.Close()
	if _, err := c.Retry(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("Retry in End: %v", err)
	}
	if out, err := c.Step(ctx, raw(t, true, BatchSDATA)); out != nil || !errors.Is(err, ErrClosed) {
		t.Fatalf("Step in End: %x %v", out, err)
	}

	s := NewServer(&testIMV{}, Config{})
	if _, err := s.Retry(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("server Retry in Init: %v", err)
	}
	if c.Result() != nil || s.Result() != nil || s.Language() != "" {
		t.Fatal("result or language before any RESULT")
	}
	if b, err := ParseBatch(s.Close(), 0); err != nil || b.Type != BatchClose || !b.FromServer || s.State() != StateEnd {
		t.Fatalf("server Close = %+v, %v, state %v", b, err, s.State())
	}

	// An unencodable language preference fails the client locally.
	c = NewClient(&testIMC{}, Config{Language: "中文"})
	out, err := c.Start(ctx)
	expectFatal(t, out, err, false, ErrLocalError, 0)
	if !errors.Is(err, ErrEncode) {
		t.Fatalf("error %v", err)
	}
}

// TestResultIntoClientWithoutAssessment: receivers accept a RESULT without
// Assessment-Result (Result.Assessment stays nil).
func TestResultIntoClientWithoutAssessment(t *testing.T) {
	c := clientIn(t, StateServerWorking)
	if _, err := c.Step(ctx, raw(t, true, BatchResult, RecommendationDenied.Message())); err != nil {
		t.Fatal(err)
	}
	if r := c.Result(); r.Assessment != nil || r.Recommendation != RecommendationDenied {
		t.Fatalf("result %+v", r)
	}
}
