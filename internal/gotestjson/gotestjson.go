// Package gotestjson reads `go test -json` (test2json events), prints it as plainly as go test without -v
// (package lines, and the output of failed tests), and counts every test's outcome, so that a skipped test
// is seen: a skip that an allow-list does not name and explain fails the run.
package gotestjson

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json), with the fields used here.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	// ImportPath names the package of build-output and build-fail events.
	ImportPath string
}

// Allowed holds the skips a run may have: "package Test[/sub]" mapped to why the skip is expected.
type Allowed map[string]string

// ParseAllowed reads an allow-list: one skip a line, the package's import path, the test's full name
// (subtests as TestX/sub) and, after '#', why it skips. Blank lines and lines that start with '#' are
// comments. An entry without its reason is an error: every allowed skip is explained.
func ParseAllowed(r io.Reader, name string) (Allowed, error) {
	a := Allowed{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entry, why, _ := strings.Cut(line, "#")
		fields := strings.Fields(entry)
		why = strings.TrimSpace(why)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want 'package TestName # why it skips', got %q", name, n, line)
		}
		if why == "" {
			return nil, fmt.Errorf("%s:%d: %s %s: say after '#' why this skip is expected", name, n, fields[0], fields[1])
		}
		a[fields[0]+" "+fields[1]] = why
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return a, nil
}

// Skip is one skipped test and the reason its output gave.
type Skip struct {
	Package, Test, Reason string
	// Allowed is the allow-list's explanation; empty when the skip is not allowed.
	Allowed string
}

// Counts is a run's outcome.
type Counts struct {
	Packages, Passed, Failed int
	Skips                    []Skip
	// FailedPackages failed as a whole (a build failure, a panic outside a test, a timeout).
	FailedPackages []string
}

// Unexpected lists the skips the allow-list does not name.
func (c Counts) Unexpected() []Skip {
	var out []Skip
	for _, s := range c.Skips {
		if s.Allowed == "" {
			out = append(out, s)
		}
	}
	return out
}

// Summary is one line: tests passed, failed, skipped (of which allowed), packages.
func (c Counts) Summary() string {
	return fmt.Sprintf("%d tests passed, %d failed, %d skipped (%d allowed) in %d packages",
		c.Passed, c.Failed, len(c.Skips), len(c.Skips)-len(c.Unexpected()), c.Packages)
}

// Err is nil for a run with no failure and no skip outside the allow-list.
func (c Counts) Err(allowList string) error {
	var errs []error
	if c.Failed > 0 || len(c.FailedPackages) > 0 {
		errs = append(errs, fmt.Errorf("%d tests failed; packages failed: %s", c.Failed, strings.Join(c.FailedPackages, ", ")))
	}
	for _, s := range c.Unexpected() {
		errs = append(errs, fmt.Errorf("%s %s skipped (%s) and %s does not allow it: make it run, or add '%s %s # why' there",
			s.Package, s.Test, s.Reason, allowList, s.Package, s.Test))
	}
	return errors.Join(errs...)
}

// Filter reads events from r and writes to w what go test without -v prints: each package's result line
// (ok, FAIL, no test files), a failed test's whole output, one line per skipped test with its reason, and
// any line that is not an event (passed through). It returns the counts.
func Filter(r io.Reader, w io.Writer, allowed Allowed) (Counts, error) {
	var c Counts
	// Output of each running test, keyed by package and test, printed if it fails.
	outputs := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			c.FailedPackages = append(c.FailedPackages, e.ImportPath)
		case e.Test == "" && e.Action == "output":
			// The package's own lines: its result, and what ran outside any test (a panic, TestMain).
			if t := strings.TrimSpace(e.Output); t != "PASS" && !strings.HasPrefix(t, "=== ") {
				fmt.Fprint(w, e.Output)
			}
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			c.Packages++
			if e.Action == "fail" {
				c.FailedPackages = append(c.FailedPackages, e.Package)
			}
		case e.Action == "output":
			outputs[key] = append(outputs[key], e.Output)
		case e.Action == "pass":
			c.Passed++
			delete(outputs, key)
		case e.Action == "fail":
			c.Failed++
			for _, o := range outputs[key] {
				fmt.Fprint(w, o)
			}
			delete(outputs, key)
		case e.Action == "skip":
			s := Skip{Package: e.Package, Test: e.Test, Reason: skipReason(outputs[key]), Allowed: allowed[key]}
			c.Skips = append(c.Skips, s)
			delete(outputs, key)
			verdict := "allowed: " + s.Allowed
			if s.Allowed == "" {
				verdict = "NOT in the allow-list"
			}
			fmt.Fprintf(w, "--- SKIP: %s %s: %s (%s)\n", s.Package, s.Test, s.Reason, verdict)
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("reading go test -json: %w", err)
	}
	sort.Strings(c.FailedPackages)
	return c, nil
}

// skipReason is what the test logged before it skipped (t.Skip's message), without test2json's framing.
func skipReason(lines []string) string {
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return "no reason given"
	}
	return strings.Join(out, " ")
}
