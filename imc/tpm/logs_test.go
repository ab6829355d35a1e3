package tpmimc

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"trustnac/transport/patnc"
)

func logData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestLogPiece(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "binary_bios_measurements")
	data := logData(1000)
	if err := os.WriteFile(boot, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, &fakeTPM{}, Config{EventLog: boot, IMALog: "-", MaxLogChunk: 300})
	tests := []struct {
		name       string
		kind       uint8
		offset     uint64
		wantOffset uint64
		wantLen    int
	}{
		{"start", patnc.LogBoot, 0, 0, 300},
		{"middle", patnc.LogBoot, 300, 300, 300},
		{"last piece", patnc.LogBoot, 900, 900, 100},
		{"at the end", patnc.LogBoot, 1000, 1000, 0},
		{"past the end restarts", patnc.LogBoot, 5000, 0, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.LogPiece(tt.kind, tt.offset)
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tt.kind || p.Offset != tt.wantOffset || p.Total != 1000 || len(p.Data) != tt.wantLen {
				t.Fatalf("piece kind %d offset %d total %d len %d", p.Kind, p.Offset, p.Total, len(p.Data))
			}
			if !bytes.Equal(p.Data, data[p.Offset:p.Offset+uint64(len(p.Data))]) {
				t.Error("piece data differs from the file")
			}
			if _, err := patnc.EncodeAttribute(p, false); err != nil {
				t.Errorf("piece does not encode: %v", err)
			}
		})
	}
	// Reassembling pieces by offset gives the log.
	var got []byte
	for off := uint64(0); ; {
		p, err := c.LogPiece(patnc.LogBoot, off)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Data...)
		off += uint64(len(p.Data))
		if off >= p.Total {
			break
		}
	}
	if !bytes.Equal(got, data) {
		t.Error("reassembled log differs")
	}
	// IMA is configured off; an unknown kind has no file.
	for _, kind := range []uint8{patnc.LogIMA, 9} {
		if p, err := c.LogPiece(kind, 0); p != nil || err != nil {
			t.Errorf("kind %d: %v, %v", kind, p, err)
		}
	}
	// A missing file is an error.
	missing := newCollector(t, &fakeTPM{}, Config{EventLog: filepath.Join(dir, "nope")})
	if _, err := missing.LogPiece(patnc.LogBoot, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing log: %v", err)
	}
}

// securityfs logs report size 0; a FIFO stands in for one.
func TestReadLogPieceStream(t *testing.T) {
	data := logData(2500)
	tests := []struct {
		name      string
		offset    uint64
		chunk     int
		limit     int64
		wantData  []byte
		wantTotal uint64
		err       error
	}{
		{"start", 0, 1000, 1 << 20, data[:1000], 2500, nil},
		{"tail", 2000, 1000, 1 << 20, data[2000:], 2500, nil},
		{"end", 2500, 1000, 1 << 20, nil, 2500, nil},
		{"past the end", 3000, 1000, 1 << 20, nil, 2500, nil},
		{"too large", 0, 1000, 2000, nil, 0, errLogTooLarge},
		{"too large in the tail", 0, 100, 2400, nil, 0, errLogTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "log")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					return
				}
				f.Write(data) // the reader may stop early
				f.Close()
			}()
			got, total, err := readLogPiece(fifo, tt.offset, tt.chunk, tt.limit)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && (!bytes.Equal(got, tt.wantData) || total != tt.wantTotal) {
				t.Errorf("got %d bytes total %d, want %d bytes total %d", len(got), total, len(tt.wantData), tt.wantTotal)
			}
			// Unblock the writer if the reader stopped early.
			if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				buf := make([]byte, 4096)
				for {
					if n, _ := r.Read(buf); n == 0 {
						break
					}
				}
				r.Close()
			}
			<-done
		})
	}
}

func TestReadLogPieceRegularTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, logData(100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readLogPiece(path, 0, 10, 99); !errors.Is(err, errLogTooLarge) {
		t.Errorf("err %v, want errLogTooLarge", err)
	}
}
