package gotestjson_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/gotestjson"
)

// events builds a go test -json stream from "Action Package Test Output" lines ('|' separates fields).
func events(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		f := strings.SplitN(l, "|", 4)
		for len(f) < 4 {
			f = append(f, "")
		}
		b.WriteString(`{"Action":"` + f[0] + `","Package":"` + f[1] + `","Test":"` + f[2] + `","Output":` + quote(f[3]) + "}\n")
	}
	return b.String()
}

func quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestFilter(t *testing.T) {
	allowed := gotestjson.Allowed{"p/b TestAllowed": "needs a GPU"}
	for _, tc := range []struct {
		name      string
		in        string
		summary   string
		wantOut   []string // each printed
		notOut    []string // none printed
		wantErr   []string // each in the error; none: no error
		wantSkips int
	}{
		{
			name: "all pass",
			in: events("run|p/a|TestA", "output|p/a|TestA|=== RUN   TestA\n", "output|p/a|TestA|--- PASS: TestA (0.00s)\n",
				"pass|p/a|TestA", "output|p/a||PASS\n", "output|p/a||ok  \tp/a\t0.01s\n", "pass|p/a|"),
			summary: "1 tests passed, 0 failed, 0 skipped (0 allowed) in 1 packages",
			wantOut: []string{"ok  \tp/a\t0.01s\n"},
			notOut:  []string{"=== RUN", "--- PASS", "PASS\n"},
		},
		{
			name: "a skip nobody allowed fails, with its reason",
			in: events("run|p/a|TestS", "output|p/a|TestS|=== RUN   TestS\n", "output|p/a|TestS|    s_test.go:9: no stack here\n",
				"output|p/a|TestS|--- SKIP: TestS (0.00s)\n", "skip|p/a|TestS", "output|p/a||ok  \tp/a\t0.01s\n", "pass|p/a|"),
			summary:   "0 tests passed, 0 failed, 1 skipped (0 allowed) in 1 packages",
			wantOut:   []string{"--- SKIP: p/a TestS: s_test.go:9: no stack here (NOT in the allow-list)"},
			wantErr:   []string{"p/a TestS skipped (s_test.go:9: no stack here)", "add 'p/a TestS # why'"},
			wantSkips: 1,
		},
		{
			name: "an allowed skip passes and says why",
			in: events("output|p/b|TestAllowed|    b_test.go:3: no GPU\n", "skip|p/b|TestAllowed",
				"output|p/b|TestAllowed/sub|=== RUN   TestAllowed/sub\n", "skip|p/b|TestAllowed/sub", "pass|p/b|"),
			summary:   "0 tests passed, 0 failed, 2 skipped (1 allowed) in 1 packages",
			wantOut:   []string{"(allowed: needs a GPU)", "p/b TestAllowed/sub: no reason given (NOT in the allow-list)"},
			wantErr:   []string{"p/b TestAllowed/sub skipped"},
			wantSkips: 2,
		},
		{
			name: "a failure prints its test's output",
			in: events("output|p/a|TestF|=== RUN   TestF\n", "output|p/a|TestF|    f_test.go:5: got 1, want 2\n",
				"output|p/a|TestF|--- FAIL: TestF (0.00s)\n", "fail|p/a|TestF", "output|p/a||FAIL\n", "output|p/a||FAIL\tp/a\t0.01s\n", "fail|p/a|"),
			summary: "0 tests passed, 1 failed, 0 skipped (0 allowed) in 1 packages",
			wantOut: []string{"f_test.go:5: got 1, want 2", "--- FAIL: TestF", "FAIL\tp/a\t0.01s"},
			wantErr: []string{"1 tests failed; packages failed: p/a"},
		},
		{
			name:    "a build failure and lines that are not events",
			in:      `{"ImportPath":"p/c [p/c.test]","Action":"build-output","Output":"c.go:1: syntax error\n"}` + "\n" + `{"ImportPath":"p/c [p/c.test]","Action":"build-fail"}` + "\nplain line\n",
			summary: "0 tests passed, 0 failed, 0 skipped (0 allowed) in 0 packages",
			wantOut: []string{"c.go:1: syntax error\n", "plain line\n"},
			wantErr: []string{"packages failed: p/c [p/c.test]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := gotestjson.Filter(strings.NewReader(tc.in), &out, allowed)
			if err != nil {
				t.Fatalf("Filter: %v", err)
			}
			if got := c.Summary(); got != tc.summary {
				t.Errorf("Summary() = %q, want %q", got, tc.summary)
			}
			if len(c.Skips) != tc.wantSkips {
				t.Errorf("%d skips, want %d", len(c.Skips), tc.wantSkips)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, &out)
				}
			}
			for _, n := range tc.notOut {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, &out)
				}
			}
			err = c.Err("skips.txt")
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Err() = %v, want it to say %q", err, w)
				}
			}
		})
	}
}

func TestParseAllowed(t *testing.T) {
	a, err := gotestjson.ParseAllowed(strings.NewReader("# comment\n\np/a TestX/sub  # the reason\n"), "f")
	if err != nil || a["p/a TestX/sub"] != "the reason" || len(a) != 1 {
		t.Fatalf("ParseAllowed = %v, %v", a, err)
	}
	for in, want := range map[string]string{
		"p/a TestX\n":           "f:1: p/a TestX: say after '#' why",
		"p/a TestX #   \n":      "say after '#' why",
		"\np/a # why\n":         "f:2: want 'package TestName # why it skips'",
		"p/a TestX extra # w\n": "want 'package TestName",
	} {
		if _, err := gotestjson.ParseAllowed(strings.NewReader(in), "f"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseAllowed(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}

// TestRealGoTest runs the real go test -json on a small module with a passing, a skipping and (allowed) a
// second skipping test, through the built command, as dev/test.sh does.
func TestRealGoTest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/m\n\ngo 1.21\n")
	write("m_test.go", `package m

import "testing"

func TestRuns(t *testing.T)    {}
func TestSkips(t *testing.T)   { t.Skip("the reason it gives") }
func TestAllowed(t *testing.T) { t.Skip("expected") }
`)
	write("skips.txt", "example.test/m TestAllowed # expected here\n")
	bin := filepath.Join(t.TempDir(), "gotestjson")
	if out, err := exec.Command("go", "build", "-o", bin, "../../dev/gotestjson").CombinedOutput(); err != nil {
		t.Fatalf("building dev/gotestjson: %v\n%s", err, out)
	}
	goTest := exec.Command("go", "test", "-json", "-count=1", ".")
	goTest.Dir = dir
	goTest.Env = append(os.Environ(), "GOFLAGS=", "GOTOOLCHAIN=local")
	stream, err := goTest.Output()
	if err != nil {
		t.Fatalf("go test -json: %v\n%s", err, stream)
	}
	filter := exec.Command(bin, "--phase", "tiny", "--allow", filepath.Join(dir, "skips.txt"))
	filter.Stdin = bytes.NewReader(stream)
	var stdout, stderr bytes.Buffer
	filter.Stdout, filter.Stderr = &stdout, &stderr
	err = filter.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("filter: %v, want exit 1\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	for _, w := range []string{
		"tiny: 1 tests passed, 0 failed, 2 skipped (1 allowed) in 1 packages",
		"--- SKIP: example.test/m TestSkips: m_test.go:6: the reason it gives (NOT in the allow-list)",
		"(allowed: expected here)", "ok  \texample.test/m",
	} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, &stdout)
		}
	}
	if !strings.Contains(stderr.String(), "example.test/m TestSkips skipped") {
		t.Errorf("stderr does not name the unexpected skip:\n%s", &stderr)
	}
}
