package patnc

import "time"

// Operational Status (RFC 5792 §4.2.5): status 8, result 8, reserved 16,
// last use as 20 octets "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339, UTC).
const (
	opStatusLen  = 24
	lastUseLen   = 20
	lastUseZero  = "0000-00-00T00:00:00Z" // last use unknown or never
	lastUseShape = "dddd-dd-ddTdd:dd:ddZ" // d: an ASCII digit
)

// AttrID returns IETF type 5.
func (OperationalStatus) AttrID() AttrID { return ietf(AttrOperationalStatus) }

// AppendBinary appends the 24-byte value (RFC 5792 §4.2.5). LastUse is
// written in UTC with whole seconds; a zero LastUse as
// "0000-00-00T00:00:00Z". Status must be 0–3 and Result 0–3.
func (s OperationalStatus) AppendBinary(b []byte) ([]byte, error) {
	if s.Status > StatusOperational {
		return b, invalid("operational status %d is not defined (0–3)", s.Status)
	}
	if s.Result > ResultUnsuccessful {
		return b, invalid("operational result %d is not defined (0–3)", s.Result)
	}
	b = append(b, s.Status, s.Result, 0, 0)
	if s.LastUse.IsZero() {
		return append(b, lastUseZero...), nil
	}
	t := s.LastUse.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return b[:len(b)-4], invalid("last use year %d does not fit 4 digits", y)
	}
	return t.AppendFormat(b, "2006-01-02T15:04:05Z"), nil
}

// UnmarshalBinary decodes an Operational Status (RFC 5792 §4.2.5). The last
// use must be exactly "YYYY-MM-DDTHH:MM:SSZ" with a valid UTC date and time
// (no leap second), or "0000-00-00T00:00:00Z", which decodes to the zero
// time. Reserved bits are ignored.
func (s *OperationalStatus) UnmarshalBinary(b []byte) error {
	if err := wantLen(b, opStatusLen, "operational status"); err != nil {
		return err
	}
	if b[0] > StatusOperational {
		return malformed(0, "operational status %d is not defined (0–3)", b[0])
	}
	if b[1] > ResultUnsuccessful {
		return malformed(1, "operational result %d is not defined (0–3)", b[1])
	}
	t, err := parseLastUse(b[4:])
	if err != nil {
		return err
	}
	*s = OperationalStatus{Status: b[0], Result: b[1], LastUse: t}
	return nil
}

// parseLastUse parses the 20-octet last use field at value offset 4.
func parseLastUse(f []byte) (time.Time, error) {
	const base = 4
	if string(f) == lastUseZero {
		return time.Time{}, nil
	}
	for i := 0; i < lastUseLen; i++ {
		want := lastUseShape[i]
		if want == 'd' {
			if f[i] < '0' || f[i] > '9' {
				return time.Time{}, malformed(base+i, "last use %q: digit expected", f)
			}
		} else if f[i] != want {
			return time.Time{}, malformed(base+i, "last use %q: %q expected", f, want)
		}
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range f[i : i+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	switch {
	case year < 1:
		return time.Time{}, malformed(base, "last use %q: year 0000 with a non-zero time", f)
	case month < 1 || month > 12:
		return time.Time{}, malformed(base+5, "last use %q: month out of range", f)
	case day < 1 || day > daysIn(year, month):
		return time.Time{}, malformed(base+8, "last use %q: day out of range", f)
	case hour > 23:
		return time.Time{}, malformed(base+11, "last use %q: hour out of range", f)
	case minute > 59:
		return time.Time{}, malformed(base+14, "last use %q: minute out of range", f)
	case sec > 59:
		return time.Time{}, malformed(base+17, "last use %q: second out of range", f)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), nil
}

// daysIn returns the number of days in month of year (Gregorian).
func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
