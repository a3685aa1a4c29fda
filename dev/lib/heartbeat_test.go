// Tests of dev/lib/heartbeat.sh, the progress lines of make demo and the local stack's long steps, run by
// bash as the scripts source it.
package lib_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func bash(t *testing.T, script string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -euo pipefail; source ./heartbeat.sh; "+script)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func TestWithHeartbeat(t *testing.T) {
	_, stderr, err := bash(t, `HEARTBEAT_SECONDS=1 with_heartbeat "sleeping" "about 3 s" sleep 2.6`)
	if err != nil {
		t.Fatalf("with_heartbeat: %v\n%s", err, stderr)
	}
	// One line a second (fewer on a loaded machine, where a second's sleep can take longer), each with the
	// time so far.
	lines := strings.Split(strings.Trim(stderr, "\n"), "\n")
	line := regexp.MustCompile(`^  \.\.\. still sleeping \([1-9]s so far; about 3 s the first time\)$`)
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("heartbeat line %q, want %s", l, line)
		}
	}
	if len(lines) < 1 || len(lines) > 3 {
		t.Errorf("%d heartbeat lines in 2.6 s at one a second:\n%s", len(lines), stderr)
	}
	// A quick step prints nothing, and the step's exit status is with_heartbeat's.
	_, stderr, err = bash(t, `with_heartbeat "failing" "x" false`)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || stderr != "" {
		t.Errorf("with_heartbeat false: %v, stderr %q; want exit 1 and no line", err, stderr)
	}
	if out, _, _ := bash(t, `fmt_duration 100; echo; fmt_duration 7`); out != "1m40s\n7s" {
		t.Errorf("fmt_duration: %q", out)
	}
}

// TestHeartbeatEndsWithItsScript: a script that dies in the middle of a step (die, set -e) leaves no printer.
func TestHeartbeatEndsWithItsScript(t *testing.T) {
	out, stderr, err := bash(t, `HEARTBEAT_SECONDS=1 heartbeat_start "x" "y"; echo "$HEARTBEAT_PID"; exit 3`)
	if err == nil {
		t.Fatalf("the script exited 0, want 3\n%s", stderr)
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(out))
	if perr != nil {
		t.Fatalf("no printer pid: %q", out)
	}
	if _, serr := os.Stat("/proc/" + strconv.Itoa(pid)); serr != nil {
		t.Logf("the printer %d was gone at once", pid)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, serr := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if serr != nil || strings.Contains(string(b), ") Z ") {
			return // gone, or a zombie waiting for its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("the printer (pid %d) still runs 5 s after its script exited", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
