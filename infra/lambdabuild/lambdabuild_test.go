package lambdabuild

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestParseArch(t *testing.T) {
	for in, want := range map[string]Arch{"": HostArch(), "x86_64": X86_64, "amd64": X86_64, "ARM64": ARM64, "aarch64": ARM64} {
		if got, err := ParseArch(in); got != want || err != nil {
			t.Errorf("ParseArch(%q) = %q, %v; want %q, nil", in, got, err, want)
		}
	}
	if _, err := ParseArch("sparc"); !errors.Is(err, ErrUnknownArch) {
		t.Errorf("ParseArch(sparc) = %v, want ErrUnknownArch", err)
	}
}

func TestLocalCompiler(t *testing.T) {
	have := func(names ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, n := range append(names, "go") {
				if n == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", exec.ErrNotFound
		}
	}
	noEnv := func(string) string { return "" }
	tests := []struct {
		name           string
		fn             Function
		arch           Arch
		goos, goarch   string
		path           func(string) (string, error)
		wantCC, errHas string
	}{
		{"pure Go on macOS", Bootstrap, ARM64, "darwin", "arm64", have(), "", ""},
		{"cgo on macOS", Health, ARM64, "darwin", "arm64", have("cc"), "", "Linux host"},
		{"cgo native", Health, X86_64, "linux", "amd64", have("cc"), "cc", ""},
		{"cgo native, gcc only", Health, X86_64, "linux", "amd64", have("gcc"), "gcc", ""},
		{"cgo cross to arm64", Health, ARM64, "linux", "amd64", have("cc", "aarch64-linux-gnu-gcc"), "aarch64-linux-gnu-gcc", ""},
		{"cgo cross without compiler", Health, ARM64, "linux", "amd64", have("cc"), "", "aarch64-linux-gnu-gcc"},
		{"cgo cross to x86_64", Health, X86_64, "linux", "arm64", have("cc"), "", "x86_64-linux-gnu-gcc"},
		{"no go", Bootstrap, X86_64, "linux", "amd64", func(string) (string, error) { return "", exec.ErrNotFound }, "", "go is not on PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := LocalCompiler(tt.fn, tt.arch, tt.goos, tt.goarch, noEnv, tt.path)
			if tt.errHas != "" {
				if !errors.Is(err, ErrNoLocalToolchain) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("LocalCompiler = %q, %v; want ErrNoLocalToolchain naming %q", cc, err, tt.errHas)
				}
				return
			}
			if err != nil || cc != tt.wantCC {
				t.Fatalf("LocalCompiler = %q, %v; want %q, nil", cc, err, tt.wantCC)
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"2.9", "2.34", true}, {"2.34", "2.34", false}, {"2.35", "2.34", false}, {"2.3.4", "2.34", true}, {"2", "2.1", true}} {
		if got := versionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDockerCommand(t *testing.T) {
	got := strings.Join(DockerCommand(Health, "/asset-input", "/asset-output"), " ")
	want := "bash -c cd /asset-input && go build -tags lambda.norpc -trimpath -buildvcs=false '-ldflags=-s -w' -o /asset-output/bootstrap ./functions/health"
	if got != want {
		t.Errorf("DockerCommand = %q, want %q", got, want)
	}
}
