package lab

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// eapolWatch records when the first EAPOL frame (ethertype 0x888e, either
// direction) crossed any link of a namespace: the start of the 802.1X
// conversation, whoever began it.
type eapolWatch struct {
	fd   int
	mu   sync.Mutex
	seen []time.Time // since Arm, capped
	done chan struct{}
}

const ethPPAE = 0x888e

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// watchEAPOL opens a packet socket for EAPOL in namespace ns.
func watchEAPOL(ns string) (*eapolWatch, error) {
	w := &eapolWatch{fd: -1, done: make(chan struct{})}
	err := InNetns(ns, func() error {
		// ETH_P_ALL: a socket for one ethertype sees no outgoing frames.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("lab: EAPOL socket in %s: %w", ns, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("lab: EAPOL socket in %s: %w", ns, err)
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		w.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *eapolWatch) loop() {
	buf := make([]byte, 2048)
	for {
		select {
		case <-w.done:
			unix.Close(w.fd)
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil || n < 14 || uint16(buf[12])<<8|uint16(buf[13]) != ethPPAE {
			continue
		}
		now := time.Now()
		w.mu.Lock()
		if len(w.seen) < 4096 {
			w.seen = append(w.seen, now)
		}
		w.mu.Unlock()
	}
}

// Arm forgets what was seen.
func (w *eapolWatch) Arm() {
	w.mu.Lock()
	w.seen = w.seen[:0]
	w.mu.Unlock()
}

// FirstAfter is when the first EAPOL frame at or after t was seen (zero if
// none).
func (w *eapolWatch) FirstAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if !s.Before(t) {
			return s
		}
	}
	return time.Time{}
}

// Close stops the watch.
func (w *eapolWatch) Close() { close(w.done) }

// since lists the frames' times relative to t, for error messages.
func (w *eapolWatch) since(t time.Time) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for _, s := range w.seen {
		out = append(out, s.Sub(t).Round(time.Millisecond))
	}
	return out
}
