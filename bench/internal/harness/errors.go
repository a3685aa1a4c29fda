package harness

import "errors"

var (
	// ErrInvalidConfig reports a flag that cannot work; the message names it.
	ErrInvalidConfig = errors.New("invalid benchmark configuration")
	// ErrSetup means a peer, a binary or the benchmark's own broker could not be made ready.
	ErrSetup = errors.New("benchmark setup failed")
	// ErrCorrectness means one of our readers lost, duplicated or altered events, or its memory did not
	// flatten while the broker was stalled (in quick mode also: any contender lost events). Speed figures
	// never produce this error.
	ErrCorrectness = errors.New("benchmark correctness check failed")
)
