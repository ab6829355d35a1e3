package pdp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"sync"
)

// decisionDigest identifies what rec decides and why: every field but the
// counters (FirstSeen, Assessments, DecidedAt), plus whether DecidedAt is
// zero, which marks a posture record stale. Two records with the same
// digest differ only in their counters. A value the canonical form below
// does not know is hashed in its JSON form; when even that fails, ok is
// false and the record is never taken for a repeat.
func decisionDigest(rec *Record) (digest [sha256.Size]byte, ok bool) {
	e := digestBufs.Get().(*digestEncoder)
	defer digestBufs.Put(e)
	e.b = e.b[:0]
	e.unique = false
	for _, s := range [...]string{rec.ID, rec.MAC, rec.Identity, rec.Channel, rec.Remote,
		rec.Role, rec.Rule, rec.Recommendation, rec.Policy} {
		e.str(s)
	}
	for _, l := range [...][]string{rec.Groups, rec.Reasons, rec.Remediation} {
		e.strs(l)
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(rec.Facts)))
	for _, ns := range slices.Sorted(maps.Keys(rec.Facts)) {
		e.str(ns)
		e.value(rec.Facts[ns])
	}
	if rec.DecidedAt.IsZero() {
		e.b = append(e.b, 'z')
	}
	if e.unique {
		return digest, false
	}
	return sha256.Sum256(e.b), true
}

// digestEncoder writes the canonical form decisionDigest hashes: every
// value tagged with its kind and every string and list with its length, so
// that no two different values share an encoding.
type digestEncoder struct {
	b []byte
	// unique is set when a value could not be encoded: the record must not
	// be taken for a repeat of any other.
	unique bool
}

var digestBufs = sync.Pool{New: func() any { return &digestEncoder{b: make([]byte, 0, 1024)} }}

func (e *digestEncoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *digestEncoder) strs(l []string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

func (e *digestEncoder) value(v any) {
	switch v := v.(type) {
	case nil:
		e.b = append(e.b, 'n')
	case string:
		e.b = append(e.b, 's')
		e.str(v)
	case bool:
		if v {
			e.b = append(e.b, 't')
		} else {
			e.b = append(e.b, 'f')
		}
	case int:
		e.b = binary.AppendVarint(append(e.b, 'i'), int64(v))
	case int64:
		e.b = binary.AppendVarint(append(e.b, 'i'), v)
	case uint64:
		e.b = binary.AppendUvarint(append(e.b, 'u'), v)
	case float64:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 'd'), math.Float64bits(v))
	case []string:
		e.b = append(e.b, 'L')
		e.strs(v)
	case []any:
		e.b = binary.AppendUvarint(append(e.b, 'A'), uint64(len(v)))
		for _, x := range v {
			e.value(x)
		}
	case map[string]any:
		e.b = binary.AppendUvarint(append(e.b, 'M'), uint64(len(v)))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			e.str(k)
			e.value(v[k])
		}
	default:
		j, err := json.Marshal(v)
		if err != nil {
			e.unique = true
			return
		}
		e.b = append(e.b, 'j')
		e.str(string(j))
	}
}
