package tcpin

import "errors"

var (
	// ErrInvalidConfig reports a Config that cannot work; the message names the field.
	ErrInvalidConfig = errors.New("invalid reader config")
	// ErrTooManyConnections is recorded when listen mode refuses a connection over MaxConns.
	ErrTooManyConnections = errors.New("too many connections")
	// ErrTooManyFromAddr is recorded when listen mode refuses a connection over MaxConnsPerAddr from one
	// source address.
	ErrTooManyFromAddr = errors.New("too many connections from one address")
	// ErrTooSlow ends a listen-mode connection that made too little progress while slots were scarce.
	ErrTooSlow = errors.New("source too slow")
)

var (
	// ErrTLSFiles reports a certificate, key or CA file that cannot be read or used; the message names the
	// flag.
	ErrTLSFiles = errors.New("source TLS files")
	// ErrNoClientCertificate refuses a listen-mode client that presented no certificate while one is
	// required (--source-tls-ca).
	ErrNoClientCertificate = errors.New("client presented no certificate")
	// ErrClientNotAllowed refuses a client whose verified certificate names no allowed client.
	ErrClientNotAllowed = errors.New("client certificate not on the allow-list")
)
