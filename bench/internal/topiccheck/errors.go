package topiccheck

import "errors"

// ErrIncomplete means a topic could not be read to its end (its high-water marks) in time.
var ErrIncomplete = errors.New("topic not read to its end")
