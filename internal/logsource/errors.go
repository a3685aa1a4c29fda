package logsource

import "errors"

var (
	// ErrInvalidConfig is wrapped by every Config validation error; the message names the field.
	ErrInvalidConfig = errors.New("invalid log source config")
	// ErrUnknownBadClass is returned by ParseBadClasses for a name not in AllBadClasses.
	ErrUnknownBadClass = errors.New("unknown bad line class")
	// ErrUsage marks command-line mistakes (bad flags or values); the binary exits with status 2 for them.
	ErrUsage = errors.New("invalid command line")
)
