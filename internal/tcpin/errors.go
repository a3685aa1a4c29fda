package tcpin

import "errors"

var (
	// ErrInvalidConfig reports a Config that cannot work; the message names the field.
	ErrInvalidConfig = errors.New("invalid reader config")
	// ErrTooManyConnections is recorded when listen mode refuses a connection over MaxConns.
	ErrTooManyConnections = errors.New("too many connections")
)
