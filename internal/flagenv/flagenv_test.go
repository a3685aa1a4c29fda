package flagenv

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

type settings struct {
	addr  string
	count int
	wait  time.Duration
	on    bool
}

func newFlags(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.StringVar(&s.addr, "source-addr", "127.0.0.1:1", "address")
	fs.IntVar(&s.count, "count", 7, "count")
	fs.DurationVar(&s.wait, "wait", time.Second, "wait")
	fs.BoolVar(&s.on, "on", false, "switch")
	return fs
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     settings
		wantErr  string // a substring of the error; it must wrap ErrUsage
		wantExit int
	}{
		{name: "defaults", want: settings{addr: "127.0.0.1:1", count: 7, wait: time.Second}},
		{name: "environment fills what flags do not set", args: []string{"--count", "3"},
			env:  map[string]string{"CMD_COUNT": "9", "CMD_SOURCE_ADDR": "10.0.0.1:5", "CMD_WAIT": "2m", "CMD_ON": "true"},
			want: settings{addr: "10.0.0.1:5", count: 3, wait: 2 * time.Minute, on: true}},
		{name: "an empty variable counts as unset", env: map[string]string{"CMD_COUNT": "", "CMD_SOURCE_ADDR": ""},
			want: settings{addr: "127.0.0.1:1", count: 7, wait: time.Second}},
		{name: "bad variable names itself", env: map[string]string{"CMD_COUNT": "lots"}, wantErr: `CMD_COUNT="lots"`, wantExit: 2},
		{name: "bad flag value names the flag", args: []string{"--wait", "soon"}, wantErr: "--wait", wantExit: 2},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "not defined: --nope", wantExit: 2},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments", wantExit: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			var stdout, stderr strings.Builder
			err := Parse(newFlags(&got), tt.args, "CMD_", func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if code := ExitCode(err); code != tt.wantExit {
				t.Errorf("ExitCode(%v) = %d, want %d", err, code, tt.wantExit)
			}
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want ErrUsage mentioning %q", tt.args, err, tt.wantErr)
				}
				if want := "cmd --help lists the flags (each can also be set as CMD_<NAME>)\n"; stdout.Len() != 0 || stderr.String() != want {
					t.Errorf("stdout = %q, stderr = %q; want only %q on stderr, not the whole usage", stdout.String(), stderr.String(), want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.args, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
			if stdout.Len() != 0 || stderr.Len() != 0 {
				t.Errorf("Parse wrote stdout %q, stderr %q; want nothing", stdout.String(), stderr.String())
			}
		})
	}
}

func TestParseHelpGoesToStdout(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var s settings
		var stdout, stderr strings.Builder
		err := Parse(newFlags(&s), []string{arg}, "CMD_", func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, flag.ErrHelp) || ExitCode(err) != 0 {
			t.Fatalf("Parse(%s) = %v (exit %d), want flag.ErrHelp and exit 0", arg, err, ExitCode(err))
		}
		if !strings.Contains(stdout.String(), "-source-addr") || stderr.Len() != 0 {
			t.Errorf("Parse(%s) stdout = %q, stderr = %q; want the usage on stdout only", arg, stdout.String(), stderr.String())
		}
	}
}

func TestNoPrefixReadsNoEnvironment(t *testing.T) {
	var s settings
	err := Parse(newFlags(&s), nil, "", func(string) string { return "99" }, &strings.Builder{}, &strings.Builder{})
	if err != nil || s.count != 7 {
		t.Fatalf("Parse with no prefix = %v, count %d; want no error and the default 7", err, s.count)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("READER_", "source-addr"); got != "READER_SOURCE_ADDR" {
		t.Errorf(`EnvName("READER_", "source-addr") = %q, want "READER_SOURCE_ADDR"`, got)
	}
}

func TestExitCode(t *testing.T) {
	if got := ExitCode(errors.New("broker down")); got != 1 {
		t.Errorf("ExitCode(other) = %d, want 1", got)
	}
}

// mode is a choice flag whose zero value prints as its default, as the commands' choice flags do.
type mode string

func (m mode) String() string {
	if m == "" {
		return "connect"
	}
	return string(m)
}
func (m *mode) Set(v string) error { *m = mode(v); return nil }

func TestParseHelpShowsChoiceDefaults(t *testing.T) {
	var s settings
	fs := newFlags(&s)
	m := mode("connect")
	fs.Var(&m, "source-mode", "connect or listen")
	var stdout, stderr strings.Builder
	if err := Parse(fs, []string{"--help"}, "", nil, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stdout.String(), "connect or listen (default connect)") {
		t.Errorf("help = %q, want --source-mode's default shown", stdout.String())
	}
	if strings.Contains(stdout.String(), "(default false)") {
		t.Errorf("help = %q, want a false bool's default left out as the flag package does", stdout.String())
	}
}
