package mschapv2

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// FormatSuccess builds the message of a Success Request (RFC 2759 §5):
// "S=" and the authenticator response as 40 upper-case hex digits, then
// " M=" and msg.
func FormatSuccess(auth [20]byte, msg string) string {
	return "S=" + strings.ToUpper(hex.EncodeToString(auth[:])) + " M=" + msg
}

// ParseSuccess decodes the message of a Success Request (RFC 2759 §5):
// "S=<40 hex digits>", optionally followed by " M=<message>". Hex digits of
// either case are accepted.
func ParseSuccess(s string) (auth [20]byte, msg string, err error) {
	if len(s) < 42 || s[:2] != "S=" {
		return auth, "", fmt.Errorf("%w: success message does not start with S= and 40 hex digits", ErrMalformed)
	}
	if _, err := hex.Decode(auth[:], []byte(s[2:42])); err != nil {
		return auth, "", fmt.Errorf("%w: authenticator response: %v", ErrMalformed, err)
	}
	rest := s[42:]
	switch {
	case rest == "":
	case strings.HasPrefix(rest, " M="):
		msg = rest[3:]
	default:
		return auth, "", fmt.Errorf("%w: text after the authenticator response", ErrMalformed)
	}
	return auth, msg, nil
}

// Failure error codes (RFC 2759 §6).
const (
	ErrorRestrictedLogonHours = 646
	ErrorAccountDisabled      = 647
	ErrorPasswordExpired      = 648
	ErrorNoDialinPermission   = 649
	ErrorAuthenticationFailed = 691
	ErrorChangingPassword     = 709
)

// Failure is the content of a Failure Request (RFC 2759 §6):
// "E=<code> R=<retry> C=<32 hex digits> V=<version> M=<message>".
type Failure struct {
	Code      int  // E
	Retry     bool // R
	Challenge []byte
	Version   int    // V; 3 for MS-CHAP-v2
	Message   string // M
}

// String formats the message of a Failure Request; C is left out when
// Challenge is empty.
func (f *Failure) String() string {
	r := 0
	if f.Retry {
		r = 1
	}
	c := ""
	if len(f.Challenge) > 0 {
		c = "C=" + strings.ToUpper(hex.EncodeToString(f.Challenge)) + " "
	}
	return fmt.Sprintf("E=%d R=%d %sV=%d M=%s", f.Code, r, c, f.Version, f.Message)
}

// ParseFailure decodes the message of a Failure Request. E is required;
// R, C, V and M are optional but must come in that order; M takes the rest
// of the text.
func ParseFailure(s string) (Failure, error) {
	var f Failure
	seen := 0 // index in "ERCVM" of the last field seen
	for s != "" {
		if len(s) < 2 || s[1] != '=' {
			return Failure{}, fmt.Errorf("%w: failure message field %q", ErrMalformed, s)
		}
		idx := strings.IndexByte("ERCVM", s[0]) + 1
		if idx <= seen || (seen == 0 && idx != 1) {
			return Failure{}, fmt.Errorf("%w: failure message field %q out of order", ErrMalformed, s[:2])
		}
		seen = idx
		if s[0] == 'M' {
			f.Message = s[2:]
			break
		}
		val := s[2:]
		if i := strings.IndexByte(val, ' '); i >= 0 {
			val, s = val[:i], val[i+1:]
		} else {
			s = ""
		}
		var err error
		switch idx {
		case 1:
			f.Code, err = atoiField(val, 9)
		case 2:
			var r int
			r, err = atoiField(val, 1)
			f.Retry = r != 0
		case 3:
			if len(val) != 2*ChallengeSize {
				err = fmt.Errorf("challenge of %d hex digits", len(val))
			} else {
				f.Challenge, err = hex.DecodeString(val)
			}
		case 4:
			f.Version, err = atoiField(val, 9)
		}
		if err != nil {
			return Failure{}, fmt.Errorf("%w: failure message %c=: %v", ErrMalformed, "ERCVM"[idx-1], err)
		}
	}
	if seen == 0 {
		return Failure{}, fmt.Errorf("%w: empty failure message", ErrMalformed)
	}
	return f, nil
}

// atoiField parses a decimal field of at most digits digits.
func atoiField(s string, digits int) (int, error) {
	if s == "" || len(s) > digits {
		return 0, fmt.Errorf("%q is not a number of 1 to %d digits", s, digits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.Atoi(s)
}
