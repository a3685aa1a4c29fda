package logsource

import (
	"errors"

	"github.com/mwaa-kafka/pipeline/internal/flagenv"
)

var (
	// ErrInvalidConfig is wrapped by every Config validation error; the message names the field.
	ErrInvalidConfig = errors.New("invalid log source config")
	// ErrUnknownBadClass is returned by ParseBadClasses for a name not in AllBadClasses.
	ErrUnknownBadClass = errors.New("unknown bad line class")
	// ErrUsage marks command-line mistakes (bad flags or values); the binary exits with status 2 for them.
	// It is the command-line convention's own error, so flagenv.ExitCode maps it.
	ErrUsage = flagenv.ErrUsage
)
