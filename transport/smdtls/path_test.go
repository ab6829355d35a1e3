package smdtls

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

// exchange sends msgs from one side and reads them on the other.
func exchange(t *testing.T, from, to *Conn, msgs int, size int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < msgs; i++ {
			if err := from.WriteMessage(ptMessage(byte(i), size)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < msgs; i++ {
		got, err := to.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := ptMessage(byte(i), size); got.ID != want.ID || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("message %d differs", i)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// appCounter counts protected application-data datagrams per direction
// and applies a per-datagram action from the Nth one on.
type appCounter struct {
	mu sync.Mutex
	n  map[direction]int
}

func (a *appCounter) next(dir direction, d []byte) (int, bool) {
	if !isAppData(d) {
		return 0, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[direction]int{}
	}
	a.n[dir]++
	return a.n[dir], true
}

func TestLossyPaths(t *testing.T) {
	tests := []struct {
		name   string
		mangle func(c *appCounter) func(direction, []byte) [][]byte
	}{
		{"drop every 5th", func(c *appCounter) func(direction, []byte) [][]byte {
			return func(dir direction, d []byte) [][]byte {
				if n, ok := c.next(dir, d); ok && n%5 == 0 {
					return [][]byte{}
				}
				return nil
			}
		}},
		{"drop a burst", func(c *appCounter) func(direction, []byte) [][]byte {
			return func(dir direction, d []byte) [][]byte {
				if n, ok := c.next(dir, d); ok && dir == toServer && n >= 10 && n < 40 {
					return [][]byte{}
				}
				return nil
			}
		}},
		{"reorder pairs", func(c *appCounter) func(direction, []byte) [][]byte {
			var held []byte
			var mu sync.Mutex
			return func(dir direction, d []byte) [][]byte {
				n, ok := c.next(dir, d)
				if !ok || dir != toServer {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if n%2 == 1 && held == nil {
					held = d
					return [][]byte{}
				}
				out := [][]byte{d}
				if held != nil {
					out, held = append(out, held), nil
				}
				return out
			}
		}},
		{"duplicate everything", func(c *appCounter) func(direction, []byte) [][]byte {
			return func(dir direction, d []byte) [][]byte { return [][]byte{d, d} }
		}},
	}
	store := newTestStore()
	store.add("ep", testPSK(1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := startServer(t, store, nil)
			p := newProxy(t, l.Addr(), tt.mangle(&appCounter{}))
			client, server := connect(t, l, p.addr(), clientConfig("ep", testPSK(1)))
			fastARQ(client, server)
			exchange(t, client, server, 3, 60<<10)
			exchange(t, server, client, 3, 60<<10)
		})
	}
}

// TestReplayedRecordsDropped sends every client datagram twice and then
// replays all of them: pion's replay window must drop the copies before
// the fragment layer sees them.
func TestReplayedRecordsDropped(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	p := newProxy(t, l.Addr(), func(dir direction, d []byte) [][]byte {
		if dir == toServer && isAppData(d) {
			return [][]byte{d, d}
		}
		return nil
	})
	client, server := connect(t, l, p.addr(), clientConfig("ep", testPSK(1)))
	patientARQ(client, server)
	exchange(t, client, server, 2, 20<<10)

	var app [][]byte
	for _, d := range p.capturedIn(toServer) {
		if isAppData(d) {
			app = append(app, d)
		}
	}
	for _, d := range app { // replay the whole capture once more
		p.send(toServer, d)
	}
	exchange(t, client, server, 1, 100) // a fresh message still gets through
	unique := len(app) + 1              // the fresh message fits one record
	waitFor(t, "frames", func() bool { return int(server.stats.framesIn.Load()) >= unique })
	if got := server.stats.framesIn.Load(); int(got) != unique {
		t.Errorf("fragment layer saw %d frames, %d unique records were sent", got, unique)
	}
	if d := server.stats.dupFrames.Load() + server.rx.dups + server.stats.strayFrames.Load(); d != 0 {
		t.Errorf("%d replayed frames reached the fragment layer", d)
	}
}

// TestTruncatedRecordsDropped sends, before each client record, a copy cut
// short (length field left alone) and one cut short with its length field
// fixed: pion drops the first by its length, the suite the second by its
// tag, and the messages arrive intact.
func TestTruncatedRecordsDropped(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	p := newProxy(t, l.Addr(), func(dir direction, d []byte) [][]byte {
		if dir != toServer || !isAppData(d) || len(d) < recordHeaderLen+explicitNonceLen+gcmTagLen+8 {
			return nil
		}
		cut := append([]byte(nil), d[:len(d)-5]...)
		fixed := append([]byte(nil), cut...)
		binary.BigEndian.PutUint16(fixed[11:13], uint16(len(fixed)-recordHeaderLen))
		return [][]byte{cut, fixed, d}
	})
	client, server := connect(t, l, p.addr(), clientConfig("ep", testPSK(1)))
	patientARQ(client, server)
	exchange(t, client, server, 2, 10<<10)
	if server.sess.authFailures.Load() == 0 {
		t.Error("no truncated record reached the suite's tag check")
	}
	if server.stats.malformed.Load() != 0 || server.stats.dupFrames.Load() != 0 {
		t.Error("a truncated record reached the fragment layer")
	}
}

// TestRecordLayout decrypts a captured record independently: keys from a
// PRF written out here, nonce = salt || epoch || sequence, additional data
// as RFC 5246 §6.2.3.3.
func TestRecordLayout(t *testing.T) {
	store := newTestStore()
	store.add("ep", testPSK(1))
	l, _ := startServer(t, store, nil)
	p := newProxy(t, l.Addr(), nil)
	client, server := connect(t, l, p.addr(), clientConfig("ep", testPSK(1)))
	exchange(t, client, server, 1, 40)

	client.sess.mu.Lock()
	master, cr, sr := client.sess.master, client.sess.clientRandom, client.sess.serverRandom
	client.sess.mu.Unlock()
	kb := referencePRF(master, []byte("key expansion"), append(append([]byte{}, sr...), cr...), 40)
	key, salt := kb[0:16], kb[32:36] // client_write_key, client_write_IV

	var rec []byte
	for _, d := range p.capturedIn(toServer) {
		if isAppData(d) {
			rec = d
			break
		}
	}
	if rec == nil {
		t.Fatal("no application record captured")
	}
	if n := int(binary.BigEndian.Uint16(rec[11:13])); recordHeaderLen+n != len(rec) {
		t.Fatalf("record length %d in a %d-byte datagram", n, len(rec))
	}
	if !bytes.Equal(rec[13:21], rec[3:11]) {
		t.Errorf("nonce_explicit %x is not epoch||sequence %x", rec[13:21], rec[3:11])
	}
	plain := referenceOpen(t, key, salt, rec)
	kind, f, _, err := parseFrame(plain)
	if err != nil || kind != frameData {
		t.Fatalf("decrypted record is not a DATA frame: %v", err)
	}
	want, _ := ptMessage(0, 40).AppendBinary(nil)
	if !bytes.Equal(f.Payload, want) {
		t.Errorf("fragment %x, want %x", f.Payload, want)
	}

	// No resumption: the ServerHello carries an empty session_id.
	for _, d := range p.capturedIn(toClient) {
		if d[0] == contentHandshake && d[recordHeaderLen] == 2 { // ServerHello
			sidLen := d[recordHeaderLen+hsHeaderLen+2+32]
			if sidLen != 0 {
				t.Errorf("ServerHello offers a %d-byte session ID", sidLen)
			}
		}
	}
}
