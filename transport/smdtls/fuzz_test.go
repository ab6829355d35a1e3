package smdtls

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite the checked-in fuzz seed corpora under testdata/fuzz")

// fuzzCipher is the record cipher the record fuzz target opens with.
func fuzzCipher() *recordCipher {
	rc, err := newSM4Cipher(unhex("0123456789ABCDEFFEDCBA9876543210"), unhex("00001234"))
	if err != nil {
		panic(err)
	}
	return rc
}

// FuzzFrame checks that every frame that parses re-encodes to the same
// bytes and that DATA frames feed a reassembler without harm.
func FuzzFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, d, a, err := parseFrame(b)
		if err != nil {
			return
		}
		var out []byte
		switch kind {
		case frameData:
			out, err = d.appendBinary(nil)
			r := reassembler{max: 1 << 16, next: d.Msg}
			if msg, done, err := r.add(&d); err == nil && done && len(msg) != int(d.Total) {
				t.Fatalf("reassembled %d bytes of a %d-byte message", len(msg), d.Total)
			}
		case frameAck:
			out, err = a.appendBinary(nil)
			s := newSendState(a.Msg, 1+int(a.Base)%100)
			s.apply(&a)
			_ = s.nextBatch(nil, 10)
		case frameClose:
			out = []byte{frameClose, 0}
		}
		if err != nil {
			t.Fatalf("re-encoding a parsed frame: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip\n%x\n%x", b, out)
		}
	})
}

// FuzzReassembly feeds a sequence of frames (each with a 2-byte length
// prefix) to a reassembler with a small cap: completed messages have the
// announced length, no buffer exceeds the cap, ACKs stay bounded and
// re-parse.
func FuzzReassembly(f *testing.F) {
	const cap = 8192
	f.Fuzz(func(t *testing.T, b []byte) {
		r := reassembler{max: cap}
		for len(b) >= 2 {
			n := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			if n > len(b) {
				n = len(b)
			}
			kind, d, _, err := parseFrame(b[:n])
			b = b[n:]
			if err != nil || kind != frameData {
				continue
			}
			r.next = d.Msg
			msg, done, err := r.add(&d)
			if len(r.buf) > cap {
				t.Fatalf("buffer of %d bytes above the cap", len(r.buf))
			}
			if err != nil {
				continue
			}
			if done && len(msg) != int(d.Total) {
				t.Fatalf("message of %d bytes, announced %d", len(msg), d.Total)
			}
			a := r.ack()
			enc, err := a.appendBinary(nil)
			if err != nil {
				t.Fatalf("ACK does not encode: %v", err)
			}
			if _, _, a2, err := parseFrame(enc); err != nil || a2.Base != a.Base || !bytes.Equal(a2.Bitmap, a.Bitmap) {
				t.Fatalf("ACK round trip: %v", err)
			}
		}
	})
}

// FuzzRecordOpen opens arbitrary records with a fixed key: no panic;
// records that open seal back to the same bytes when their explicit nonce
// is their sequence number, and the resealed record opens again.
func FuzzRecordOpen(f *testing.F) {
	rc := fuzzCipher()
	f.Fuzz(func(t *testing.T, rec []byte) {
		plain, err := rc.open(nil, rec)
		if err != nil {
			return
		}
		if int(binary.BigEndian.Uint16(plain[11:13])) != len(plain)-recordHeaderLen {
			t.Fatal("opened record's length field is wrong")
		}
		sealed, err := rc.seal(nil, plain)
		if err != nil {
			t.Fatalf("reseal: %v", err)
		}
		if bytes.Equal(rec[13:21], rec[3:11]) && !bytes.Equal(sealed, rec) {
			t.Fatalf("reseal differs\n%x\n%x", rec, sealed)
		}
		again, err := rc.open(nil, sealed)
		if err != nil || !bytes.Equal(again, plain) {
			t.Fatalf("resealed record does not open: %v", err)
		}
	})
}

// FuzzClientHello checks cookie insertion and stripping on anything that
// parses as a ClientHello.
func FuzzClientHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, d []byte) {
		ch, err := parseClientHello(d)
		if err != nil {
			return
		}
		cookie := bytes.Repeat([]byte{0x5A}, cookieLen)
		with, err := ch.appendWithCookie(nil, d, cookie)
		if err != nil {
			return // too long to grow
		}
		ch2, err := parseClientHello(with)
		if err != nil {
			t.Fatalf("ClientHello with a cookie does not parse: %v", err)
		}
		if !bytes.Equal(ch2.cookie, cookie) {
			t.Fatalf("cookie %x", ch2.cookie)
		}
		b1, a1 := ch.bodyParts()
		b2, a2 := ch2.bodyParts()
		if !bytes.Equal(b1, b2) || !bytes.Equal(a1, a2) || !bytes.Equal(d[ch.recordEnd:], with[ch2.recordEnd:]) {
			t.Fatal("inserting a cookie changed other bytes")
		}
		stripped, err := ch2.appendWithCookie(nil, with, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch3, err := parseClientHello(stripped)
		if err != nil || len(ch3.cookie) != 0 {
			t.Fatalf("stripped ClientHello: %v", err)
		}
		if len(ch.cookie) == 0 && !bytes.Equal(stripped, d) {
			t.Fatal("insert then strip does not restore a cookie-less ClientHello")
		}
	})
}

// FuzzHelloVerifyRequest checks the client's parsers of the server's
// plaintext replies.
func FuzzHelloVerifyRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, d []byte) {
		parsePlainAlert(d)
		cookie, err := parseHelloVerifyRequest(d)
		if err != nil {
			return
		}
		if len(cookie) == 0 || len(cookie) > maxCookieLen {
			t.Fatalf("cookie of %d bytes", len(cookie))
		}
		again, err := parseHelloVerifyRequest(appendHelloVerifyRequest(nil, d[5:11], cookie))
		if err != nil || !bytes.Equal(again, cookie) {
			t.Fatalf("rebuilt HelloVerifyRequest: %v", err)
		}
	})
}

// TestWriteFuzzSeeds regenerates the seed corpora from real traffic
// pieces when run with -write-seeds; otherwise it checks that the
// checked-in valid seeds still parse.
func TestWriteFuzzSeeds(t *testing.T) {
	hello := captureClientHello(t)
	ch, _ := parseClientHello(hello)
	withCookie, _ := ch.appendWithCookie(nil, hello, bytes.Repeat([]byte{1}, cookieLen))
	rc := fuzzCipher()
	record := func(typ byte, seq byte, plain []byte) []byte {
		r := append([]byte{typ, 254, 253, 0, 1, 0, 0, 0, 0, 0, seq, 0, byte(len(plain))}, plain...)
		s, _ := rc.seal(nil, r)
		return s
	}
	frame := func(v interface{ appendBinary([]byte) ([]byte, error) }) []byte {
		b, err := v.appendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	msg := bytes.Repeat([]byte("PT-TLS"), 50)
	var frames [][]byte
	for _, d := range fragments(0, msg, 64) {
		frames = append(frames, frame(&d))
	}
	lp := func(fs ...[]byte) []byte {
		var out []byte
		for _, f := range fs {
			out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
			out = append(out, f...)
		}
		return out
	}
	ack := frame(&ackFrame{Msg: 3, Base: 2, Bitmap: []byte{0xA0}})
	dataRec := record(contentApplicationData, 1, frames[0])
	hvr := appendHelloVerifyRequest(nil, hello[5:11], bytes.Repeat([]byte{9}, cookieLen))

	corpora := map[string][][]byte{
		"FuzzFrame": {
			frames[0], frames[len(frames)-1], ack,
			frame(&ackFrame{Msg: 1, Base: 4, Delivered: true}), {frameClose, 0},
			frame(&dataFrame{Chunk: minChunk}), // empty message
			frames[0][:10], {frameData, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 64, 0, 1}, {7, 0},
		},
		"FuzzReassembly": {
			lp(frames...),
			lp(frames[3], frames[1], frames[0], frames[2], frames[2]),
			lp(frames[0], frame(&dataFrame{Msg: 0, Total: 100, Chunk: 64, Index: 1, Payload: make([]byte, 36)})),
			lp(frame(&dataFrame{Msg: 9, Total: 1 << 20, Chunk: 4096, Index: 0, Payload: make([]byte, 4096)})),
		},
		"FuzzRecordOpen": {
			dataRec,
			record(contentAlert, 2, []byte{1, 0}),
			record(contentHandshake, 3, bytes.Repeat([]byte{0x14}, 16)),
			dataRec[:len(dataRec)-1],
			append(append([]byte{}, dataRec[:len(dataRec)-1]...), dataRec[len(dataRec)-1]^1),
			dataRec[:20],
		},
		"FuzzClientHello": {hello, withCookie, append(append([]byte{}, hello...), appendPlainAlert(nil, 1, 1, 0)...), hello[:40], withCookie[:len(withCookie)-3]},
		"FuzzHelloVerifyRequest": {
			hvr, hvr[:len(hvr)-2], appendPlainAlert(nil, 1, 2, AlertBadRecordMAC),
			append(append([]byte{}, hvr...), appendPlainAlert(nil, 1, 2, AlertUnknownPSKIdentity)...),
			appendHelloVerifyRequest(nil, make([]byte, 6), nil),
		},
	}
	for name, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", name)
		if !*writeSeeds {
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) < 3 {
				t.Errorf("%s: %d seeds checked in (%v); run go test -run TestWriteFuzzSeeds -write-seeds", name, len(entries), err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			sum := sha256.Sum256(s)
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%x", sum[:8])), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
