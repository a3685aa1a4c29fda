package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the controlling side (read by the test) and the terminal the child
// writes to.
func openPTY(t *testing.T) (controller, term *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(controller.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(controller.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pseudo-terminal: %v", err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/pts/%d: %v", n, err)
	}
	return controller, term
}

// TestFirstRunAtATerminal is TestFirstRunWithoutAWSConfig as a person sees it, stdout and stderr on one
// terminal: the error is printed once, as a plain line, with neither the ERROR record nor the all-zero
// summary that repeat it in JSON.
func TestFirstRunAtATerminal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "reader")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Forbidden", http.StatusForbidden)
	}))
	defer imds.Close()
	controller, term := openPTY(t)
	defer controller.Close()

	home := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL}
	cmd.Stdout, cmd.Stderr = term, term
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term.Close() // the child holds it now; when it exits, reading the controller ends
	var out bytes.Buffer
	copied := make(chan error, 1)
	go func() { _, err := io.Copy(&out, controller); copied <- err }()
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("reader with no AWS configuration: %v, want exit status 1\noutput:\n%s", err, &out)
	}
	select {
	case <-copied: // EIO once the terminal's last holder is gone
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end after the reader exited")
	}
	text := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if n := strings.Count(text, "no AWS credentials configured"); n != 1 {
		t.Errorf("the error appears %d times, want once:\n%s", n, text)
	}
	if !strings.Contains(text, "reader: reading kafka credentials from secret MWAA_Secrets in us-east-1: ") {
		t.Errorf("no plain 'reader: ...' line:\n%s", text)
	}
	if strings.Contains(text, `"level":"ERROR"`) || strings.Contains(text, `{"received":`) {
		t.Errorf("the error is repeated in JSON (an ERROR record or the summary):\n%s", text)
	}
}
