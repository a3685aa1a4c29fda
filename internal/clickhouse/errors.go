package clickhouse

import (
	"errors"
	"fmt"
)

// Sentinels callers can tell apart with errors.Is.
var (
	// ErrEmpty: a required field or value is empty.
	ErrEmpty = errors.New("empty")
	// ErrOutOfRange: a number is outside what the field accepts.
	ErrOutOfRange = errors.New("out of range")
	// ErrControlChar: a value holds a character it cannot carry: NUL, CR or LF in an identifier or broker
	// list, or, in a credential, invalid UTF-8 or a character XML 1.0 cannot hold.
	ErrControlChar = errors.New("contains a control character")
	// ErrBadEndpoint: the ClickHouse endpoint is not an http(s) URL.
	ErrBadEndpoint = errors.New("endpoint must be an http or https URL")
	// ErrDrift: Apply found objects whose definition differs from the DDL (listed in Result.Different).
	ErrDrift = errors.New("definition differs from the DDL")
	// ErrMigrationRunning: a copy of a seed-style logs into the new table is still running on the server.
	ErrMigrationRunning = errors.New("the migration of logs is still copying")
	// ErrMigrationCount: the copy of a seed-style logs does not hold as many rows as the table; nothing
	// was exchanged.
	ErrMigrationCount = errors.New("the migration's copy lost rows")
)

// ServerError is an error ClickHouse answered over HTTP: its exception code (X-ClickHouse-Exception-Code),
// the HTTP status, and the exception text it sent.
type ServerError struct {
	Status  int
	Code    int
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("clickhouse answered HTTP %d (code %d): %s", e.Status, e.Code, e.Message)
}

// IsCode reports whether err is a ServerError with the given ClickHouse exception code.
func IsCode(err error, code int) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}

// ClickHouse exception codes the package looks at.
const (
	CodeUnknownTable          = 60
	CodeUnknownDatabase       = 81
	CodeAuthenticationFailed  = 516
	CodeDatabaseAlreadyExists = 82
	CodeTableAlreadyExists    = 57
)
