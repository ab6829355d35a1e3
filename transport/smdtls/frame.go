package smdtls

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The fragment layer. Each DTLS application-data record carries one
// frame. A message (one PT-TLS message) is cut into fragments of Chunk
// bytes (the last may be shorter), numbered by Index; the receiver
// acknowledges with a bitmap and the sender retransmits what is missing.
// One message is in flight per direction at a time.
//
//	DATA (dataHeaderLen bytes, then the fragment):
//	  kind = 1 (1) | flags (1): 0x01 POLL, ask for an ACK |
//	  message number (4) | message length (4) | chunk (2) | index (2)
//	ACK (ackHeaderLen bytes, then up to maxAckBitmap bytes):
//	  kind = 2 (1) | flags (1): 0x01 DELIVERED, the receiver has taken
//	  the message | message number (4) | base (2): fragments [0, base)
//	  received | bitmap: bit i (MSB first) set = fragment base+i received
//	CLOSE (2 bytes): kind = 3 | flags = 0. The sender is closing; sent
//	  before DTLS close_notify, which pion v2.2.12 may fail to send (its
//	  Close cancels the reader first, and the reader may close the socket
//	  before close_notify goes out).
const (
	frameData  = 1
	frameAck   = 2
	frameClose = 3

	flagPoll      = 0x01
	flagDelivered = 0x01

	dataHeaderLen = 14
	ackHeaderLen  = 8
	maxAckBitmap  = 128
	minChunk      = 64
	maxFragments  = 1<<16 - 1
)

// dataFrame is one fragment of a message.
type dataFrame struct {
	Poll    bool
	Msg     uint32
	Total   uint32 // message length
	Chunk   uint16 // fragment size; every fragment but the last is this long
	Index   uint16
	Payload []byte
}

// ackFrame acknowledges fragments of one message.
type ackFrame struct {
	Delivered bool
	Msg       uint32
	Base      uint16
	Bitmap    []byte
}

// fragmentCount is the number of fragments of a total-byte message.
func fragmentCount(total, chunk int) int {
	if total == 0 {
		return 1
	}
	return (total + chunk - 1) / chunk
}

// fragmentSpan returns the offset and length of fragment i.
func fragmentSpan(total, chunk, i int) (off, n int) {
	off = i * chunk
	return off, min(chunk, total-off)
}

// check validates the header fields and the payload length.
func (f *dataFrame) check() error {
	if f.Chunk < minChunk {
		return fmt.Errorf("%w: fragment chunk %d below %d", ErrMalformed, f.Chunk, minChunk)
	}
	count := fragmentCount(int(f.Total), int(f.Chunk))
	if count > maxFragments {
		return fmt.Errorf("%w: %d-byte message in %d-byte chunks needs %d fragments", ErrMalformed, f.Total, f.Chunk, count)
	}
	if int(f.Index) >= count {
		return fmt.Errorf("%w: fragment %d of %d", ErrMalformed, f.Index, count)
	}
	if _, n := fragmentSpan(int(f.Total), int(f.Chunk), int(f.Index)); len(f.Payload) != n {
		return fmt.Errorf("%w: fragment %d holds %d bytes, want %d", ErrMalformed, f.Index, len(f.Payload), n)
	}
	return nil
}

// appendBinary appends the wire form of f.
func (f *dataFrame) appendBinary(dst []byte) ([]byte, error) {
	if err := f.check(); err != nil {
		return dst, err
	}
	var flags byte
	if f.Poll {
		flags |= flagPoll
	}
	dst = append(dst, frameData, flags)
	dst = binary.BigEndian.AppendUint32(dst, f.Msg)
	dst = binary.BigEndian.AppendUint32(dst, f.Total)
	dst = binary.BigEndian.AppendUint16(dst, f.Chunk)
	dst = binary.BigEndian.AppendUint16(dst, f.Index)
	return append(dst, f.Payload...), nil
}

// appendBinary appends the wire form of a.
func (a *ackFrame) appendBinary(dst []byte) ([]byte, error) {
	if len(a.Bitmap) > maxAckBitmap {
		return dst, fmt.Errorf("%w: ACK bitmap of %d bytes", ErrMalformed, len(a.Bitmap))
	}
	var flags byte
	if a.Delivered {
		flags |= flagDelivered
	}
	dst = append(dst, frameAck, flags)
	dst = binary.BigEndian.AppendUint32(dst, a.Msg)
	dst = binary.BigEndian.AppendUint16(dst, a.Base)
	return append(dst, a.Bitmap...), nil
}

// parseFrame decodes one frame. Exactly one of the returned frames is
// meaningful, as kind says. Payload and bitmap are copies. Errors wrap
// ErrMalformed.
func parseFrame(b []byte) (kind byte, d dataFrame, a ackFrame, err error) {
	if len(b) < 2 {
		return 0, d, a, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(b))
	}
	switch kind = b[0]; kind {
	case frameData:
		if len(b) < dataHeaderLen {
			return 0, d, a, fmt.Errorf("%w: DATA frame of %d bytes", ErrMalformed, len(b))
		}
		if b[1]&^flagPoll != 0 {
			return 0, d, a, fmt.Errorf("%w: DATA flags %#x", ErrMalformed, b[1])
		}
		d = dataFrame{
			Poll:  b[1]&flagPoll != 0,
			Msg:   binary.BigEndian.Uint32(b[2:6]),
			Total: binary.BigEndian.Uint32(b[6:10]),
			Chunk: binary.BigEndian.Uint16(b[10:12]),
			Index: binary.BigEndian.Uint16(b[12:14]),
		}
		d.Payload = b[dataHeaderLen:]
		if err := d.check(); err != nil {
			return 0, dataFrame{}, a, err
		}
		d.Payload = append([]byte(nil), d.Payload...)
		return kind, d, a, nil
	case frameAck:
		if len(b) < ackHeaderLen || len(b) > ackHeaderLen+maxAckBitmap {
			return 0, d, a, fmt.Errorf("%w: ACK frame of %d bytes", ErrMalformed, len(b))
		}
		if b[1]&^flagDelivered != 0 {
			return 0, d, a, fmt.Errorf("%w: ACK flags %#x", ErrMalformed, b[1])
		}
		a = ackFrame{
			Delivered: b[1]&flagDelivered != 0,
			Msg:       binary.BigEndian.Uint32(b[2:6]),
			Base:      binary.BigEndian.Uint16(b[6:8]),
		}
		if len(b) > ackHeaderLen {
			a.Bitmap = append([]byte(nil), b[ackHeaderLen:]...)
		}
		return kind, d, a, nil
	case frameClose:
		if len(b) != 2 || b[1] != 0 {
			return 0, d, a, fmt.Errorf("%w: CLOSE frame of %d bytes", ErrMalformed, len(b))
		}
		return kind, d, a, nil
	}
	return 0, d, a, fmt.Errorf("%w: frame kind %d", ErrMalformed, kind)
}

// bitset is a fixed-size set of fragment indexes.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (s bitset) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s bitset) set(i int)      { s[i/64] |= 1 << (i % 64) }
func (s bitset) firstClear(from, n int) int {
	for i := from; i < n; i++ {
		w := s[i/64] >> (i % 64)
		if w == ^uint64(0)>>(i%64) {
			i |= 63 // the rest of this word is set
			continue
		}
		return min(i+bits.TrailingZeros64(^w), n)
	}
	return n
}

// reassembler rebuilds messages from DATA frames, one message at a time,
// in message-number order. The buffer of a message is allocated when its
// first fragment arrives, after its announced length has been checked
// against max.
type reassembler struct {
	max  int
	next uint32 // number of the message being reassembled

	active bool
	buf    []byte
	chunk  int
	count  int
	have   bitset
	got    int
	base   int // fragments [0, base) are all present

	dups uint64 // fragments received twice
}

// add takes one fragment of message r.next. It returns the message when
// its last missing fragment arrives (and moves on to r.next+1). A message
// longer than max is refused with ErrTooLarge before anything is
// allocated; a fragment that disagrees with the message's earlier ones is
// refused with ErrMalformed.
func (r *reassembler) add(f *dataFrame) ([]byte, bool, error) {
	if f.Msg != r.next {
		return nil, false, fmt.Errorf("%w: fragment of message %d while reassembling %d", ErrMalformed, f.Msg, r.next)
	}
	if err := f.check(); err != nil {
		return nil, false, err
	}
	if !r.active {
		if int64(f.Total) > int64(r.max) {
			return nil, false, fmt.Errorf("%w: peer announced a %d-byte message, reassembly cap %d", ErrTooLarge, f.Total, r.max)
		}
		r.chunk = int(f.Chunk)
		r.count = fragmentCount(int(f.Total), r.chunk)
		r.buf = make([]byte, f.Total)
		r.have = newBitset(r.count)
		r.got, r.base = 0, 0
		r.active = true
	} else if int(f.Total) != len(r.buf) || int(f.Chunk) != r.chunk {
		return nil, false, fmt.Errorf("%w: fragment says %d bytes in %d-byte chunks, message has %d in %d", ErrMalformed, f.Total, f.Chunk, len(r.buf), r.chunk)
	}
	i := int(f.Index)
	if r.have.has(i) {
		r.dups++
		return nil, false, nil
	}
	off, _ := fragmentSpan(len(r.buf), r.chunk, i)
	copy(r.buf[off:], f.Payload)
	r.have.set(i)
	r.got++
	r.base = r.have.firstClear(r.base, r.count)
	if r.got < r.count {
		return nil, false, nil
	}
	msg := r.buf
	*r = reassembler{max: r.max, next: r.next + 1, dups: r.dups}
	return msg, true, nil
}

// ack describes the message being reassembled: base and a bitmap of the
// fragments after it, at most maxAckBitmap bytes, trailing zero bytes
// dropped.
func (r *reassembler) ack() ackFrame {
	a := ackFrame{Msg: r.next}
	if !r.active {
		return a
	}
	a.Base = uint16(r.base)
	n := min(r.count-r.base, 8*maxAckBitmap)
	var bm []byte
	for i := 0; i < n; i++ {
		if r.have.has(r.base + i) {
			for len(bm) <= i/8 {
				bm = append(bm, 0)
			}
			bm[i/8] |= 0x80 >> (i % 8)
		}
	}
	a.Bitmap = bm
	return a
}

// sendState is the sender's view of the message in flight.
type sendState struct {
	msg       uint32
	count     int
	acked     bitset
	sent      bitset
	low       int // fragments [0, low) are acknowledged
	all       bool
	delivered bool
	notify    chan struct{}
}

func newSendState(msg uint32, count int) *sendState {
	return &sendState{msg: msg, count: count, acked: newBitset(count), sent: newBitset(count), notify: make(chan struct{}, 1)}
}

// apply merges an ACK for this message and reports whether it told
// anything new.
func (s *sendState) apply(a *ackFrame) bool {
	if a.Msg != s.msg {
		return false
	}
	progress := false
	base := min(int(a.Base), s.count)
	for i := s.low; i < base; i++ {
		if !s.acked.has(i) {
			s.acked.set(i)
			progress = true
		}
	}
	for i := 0; i < 8*len(a.Bitmap) && base+i < s.count; i++ {
		if a.Bitmap[i/8]&(0x80>>(i%8)) != 0 && !s.acked.has(base+i) {
			s.acked.set(base + i)
			progress = true
		}
	}
	s.low = s.acked.firstClear(s.low, s.count)
	if s.low == s.count && !s.all {
		s.all, progress = true, true
	}
	if a.Delivered && !s.delivered {
		s.delivered, s.all, progress = true, true, true
	}
	return progress
}

// nextBatch appends to dst up to n fragment indexes not yet acknowledged,
// lowest first.
func (s *sendState) nextBatch(dst []int, n int) []int {
	for i := s.low; i < s.count && len(dst) < n; i++ {
		if !s.acked.has(i) {
			dst = append(dst, i)
		}
	}
	return dst
}
