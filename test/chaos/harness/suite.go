package harness

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// Suite is the setup the fault-injection and abuse suites share around their tests: find the repository,
// build the reader binary once, optionally bring up a stack, run the tests, and write the table of results.
type Suite struct {
	// Name prefixes every setup error ("chaos: ...").
	Name string
	// Title heads the report; " (quick mode, DATE)" or " (full mode, DATE)" is appended.
	Title string
	// ReportEnv names the environment variable that names the report file (none written when it is empty).
	ReportEnv string
	// Full selects the full version of every scenario (for the report's title).
	Full bool
	// Report collects the suite's rows.
	Report *Report
	// Setup, when set, runs after the reader is built and before the tests (e.g. to start a stack); the
	// function it returns runs after the tests.
	Setup func(root string) (teardown func(), err error)
}

// Run builds the reader into a temporary directory, stores its path in *readerBin, runs the tests and
// returns TestMain's exit code: 1 when the setup or the report fails, else the tests' own code.
func (s Suite) Run(m *testing.M, readerBin *string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		return 1
	}
	root, err := stacktest.FindRepoRoot()
	if err != nil {
		return fail(fmt.Errorf("finding the repository root: %w", err))
	}
	tmp, err := os.MkdirTemp("", s.Name+"-bin-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	if *readerBin, err = BuildReader(root, tmp); err != nil {
		return fail(err)
	}
	if s.Setup != nil {
		teardown, err := s.Setup(root)
		if err != nil {
			return fail(err)
		}
		defer teardown()
	}
	code := m.Run()
	mode := "quick"
	if s.Full {
		mode = "full"
	}
	title := fmt.Sprintf("%s (%s mode, %s)", s.Title, mode, time.Now().UTC().Format(time.DateOnly))
	if err := s.Report.Write(os.Getenv(s.ReportEnv), title); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		code = 1
	}
	return code
}
