package procstat

import "errors"

// ErrFormat means a /proc file did not look as expected.
var ErrFormat = errors.New("unexpected /proc format")
