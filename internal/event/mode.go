package event

import (
	"fmt"
	"strings"
)

// Mode selects validation strictness. The zero value is Strict.
type Mode int

// The validation modes; see the package documentation for what each accepts.
const (
	Strict Mode = iota
	Lenient
)

// ParseMode parses "strict" or "lenient" (case-insensitive).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "strict":
		return Strict, nil
	case "lenient":
		return Lenient, nil
	}
	return Strict, fmt.Errorf("parsing validation mode %q (want strict or lenient): %w", s, ErrUnknownMode)
}

// String returns "strict" or "lenient".
func (m Mode) String() string {
	switch m {
	case Strict:
		return "strict"
	case Lenient:
		return "lenient"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Set parses s (see ParseMode) into m, so a Mode is a flag.Value.
func (m *Mode) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}
