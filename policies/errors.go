package policies

import (
	"fmt"
	"strings"
)

// LoadError is one problem found in a policy file: where it is and what is wrong.
type LoadError struct {
	File string // file name given to Parse or LoadFile
	Line int    // 1-based line, 0 when unknown
	Col  int    // 1-based column, 0 when unknown
	Msg  string // what is wrong, for the admin
}

// Error formats the problem as "policies: file:line:col: msg" (line and column only where known).
func (e *LoadError) Error() string {
	return "policies: " + e.Position() + ": " + e.Msg
}

// Position formats where the problem is: "file:line:col", "file:line" or "file".
func (e *LoadError) Position() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return e.File
}

// Is makes every LoadError match ErrInvalidPolicy.
func (e *LoadError) Is(target error) bool { return target == ErrInvalidPolicy }

// LoadErrors lists every problem found in one policy file, in file order. Parse and LoadFile return
// it for an invalid file; errors.As finds both a LoadErrors and its first *LoadError, and errors.Is
// matches ErrInvalidPolicy.
type LoadErrors []*LoadError

// Error lists the problems one per line.
func (l LoadErrors) Error() string {
	switch len(l) {
	case 0:
		return "policies: invalid policy"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policies: %s: %d errors:", l[0].File, len(l))
	for _, e := range l {
		b.WriteString("\n\t")
		b.WriteString(e.Position())
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (l LoadErrors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Is makes LoadErrors match ErrInvalidPolicy even when empty.
func (l LoadErrors) Is(target error) bool { return target == ErrInvalidPolicy }
