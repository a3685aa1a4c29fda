// Package lambdabuild builds the Lambda functions' bootstrap binaries for the provided.al2023 runtime, the
// same way on every machine: on the host when it can link them (Linux with glibc and a C compiler for the
// target), and otherwise with the same go build inside a golang container. The CDK app calls it while it
// synthesizes (infra/stack), so `cdk synth` and `cdk deploy` need no pre-step.
//
// The health function links librdkafka through cgo (internal/kafkaout owns confluent-kafka-go), so its
// binary needs glibc, and no newer one than the runtime has: Build checks that.
package lambdabuild

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Arch is a Lambda architecture, spelled as Lambda spells it.
type Arch string

// The Lambda architectures.
const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// GOARCH is the Go architecture that builds for a.
func (a Arch) GOARCH() string {
	if a == ARM64 {
		return "arm64"
	}
	return "amd64"
}

// DockerPlatform is the container platform whose toolchain builds for a.
func (a Arch) DockerPlatform() string { return "linux/" + a.GOARCH() }

// HostArch is the Lambda architecture of the machine this runs on: x86_64 unless the host is arm64.
func HostArch() Arch {
	if runtime.GOARCH == "arm64" {
		return ARM64
	}
	return X86_64
}

// ParseArch reads a Lambda architecture; the empty string means HostArch.
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return HostArch(), nil
	case "x86_64", "amd64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("%w: %q (want x86_64 or arm64)", ErrUnknownArch, s)
}

// Function is one Lambda function of the project: its package under functions/, and whether it needs cgo.
type Function struct {
	Name string
	Cgo  bool
}

// Package is the function's Go package, relative to the repository root.
func (f Function) Package() string { return "./functions/" + f.Name }

// The project's Lambda functions.
var (
	Health    = Function{Name: "health", Cgo: true}
	Bootstrap = Function{Name: "bootstrap"}
)

// MaxGlibc is the glibc of provided.al2023: a binary that needs a newer symbol version fails to start there.
const MaxGlibc = "2.34"

// BinaryName is the file the provided.al2023 runtime starts.
const BinaryName = "bootstrap"

// DockerImage is the image of the container build: the Go release go.mod names, on Debian 12 (glibc 2.36,
// whose toolchain links binaries that need no glibc newer than 2.34, checked by Build and the tests).
// GOTOOLCHAIN=auto then selects go.mod's exact toolchain inside it.
const DockerImage = "golang:1.26-bookworm"

// Errors of the package.
var (
	ErrUnknownArch = errors.New("unknown Lambda architecture")
	// ErrNoLocalToolchain means this host cannot build the function; the container build can.
	ErrNoLocalToolchain = errors.New("no local toolchain for this Lambda")
	// ErrGlibcTooNew means the binary needs a newer glibc than provided.al2023 has.
	ErrGlibcTooNew = errors.New("binary needs a newer glibc than provided.al2023 has")
)

// GoBuildArgs are the go build arguments of both builds (host and container), writing output. The flags
// make the build reproducible: no paths, no VCS stamp, no symbol tables.
func GoBuildArgs(f Function, output string) []string {
	return []string{"build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w",
		"-o", output, f.Package()}
}

// Env is the build environment of f for arch, on top of the inherited one.
func Env(f Function, arch Arch) map[string]string {
	cgo := "0"
	if f.Cgo {
		cgo = "1"
	}
	return map[string]string{"GOOS": "linux", "GOARCH": arch.GOARCH(), "CGO_ENABLED": cgo, "GOTOOLCHAIN": "auto"}
}

// DockerCommand is the shell command of the container build, run in the repository mounted at input,
// writing the binary into output.
func DockerCommand(f Function, input, output string) []string {
	args := GoBuildArgs(f, output+"/"+BinaryName)
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return []string{"bash", "-c", "cd " + shellQuote(input) + " && go " + strings.Join(args, " ")}
}

// DockerEnv is the container build's environment: Env plus writable caches, since the CDK runs the container
// as the calling user, who has no home directory in the image.
func DockerEnv(f Function, arch Arch) map[string]string {
	env := Env(f, arch)
	env["HOME"] = "/tmp"
	env["GOPATH"] = "/tmp/go"
	env["GOCACHE"] = "/tmp/go-build"
	return env
}

func shellQuote(s string) string {
	plain := func(r rune) bool {
		return strings.ContainsRune("/.-_=", r) || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !plain(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// LocalCompiler says whether this host can build f for arch, and with which C compiler ("" for a pure-Go
// function). A pure-Go function builds anywhere Go runs. A cgo one needs a Linux host with glibc and a C
// compiler for the target: the host's cc (or $CC) for its own architecture, or the Debian cross compiler
// (aarch64-linux-gnu-gcc, x86_64-linux-gnu-gcc) for the other one. The error says what is missing.
func LocalCompiler(f Function, arch Arch, goos, goarch string, getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if _, err := lookPath("go"); err != nil {
		return "", fmt.Errorf("%w: go is not on PATH", ErrNoLocalToolchain)
	}
	if !f.Cgo {
		return "", nil
	}
	if goos != "linux" {
		return "", fmt.Errorf("%w: %s links librdkafka through cgo and needs a Linux host with glibc (this is %s)", ErrNoLocalToolchain, f.Name, goos)
	}
	if musl, _ := filepath.Glob("/lib/ld-musl-*"); len(musl) > 0 {
		return "", fmt.Errorf("%w: %s needs glibc and this host uses musl", ErrNoLocalToolchain, f.Name)
	}
	var candidates []string
	if goarch == arch.GOARCH() {
		if cc := getenv("CC"); cc != "" {
			candidates = append(candidates, cc)
		}
		candidates = append(candidates, "cc", "gcc")
	} else if arch == ARM64 {
		candidates = []string{"aarch64-linux-gnu-gcc"}
	} else {
		candidates = []string{"x86_64-linux-gnu-gcc"}
	}
	for _, cc := range candidates {
		if _, err := lookPath(cc); err == nil {
			return cc, nil
		}
	}
	return "", fmt.Errorf("%w: %s for %s needs a C compiler (%s) on PATH", ErrNoLocalToolchain, f.Name, arch, strings.Join(candidates, " or "))
}

// Build builds f for arch on this host into outDir/bootstrap, from the module at repoRoot, and checks that
// the binary needs no glibc newer than MaxGlibc. An ErrNoLocalToolchain error means the container build
// should be used instead; any other error is a real failure (a compile error, a glibc too new).
func Build(ctx context.Context, repoRoot string, f Function, arch Arch, outDir string) error {
	cc, err := LocalCompiler(f, arch, runtime.GOOS, runtime.GOARCH, os.Getenv, exec.LookPath)
	if err != nil {
		return err
	}
	out := filepath.Join(outDir, BinaryName)
	cmd := exec.CommandContext(ctx, "go", GoBuildArgs(f, out)...)
	cmd.Dir = repoRoot
	cmd.Env = os.Environ()
	for k, v := range Env(f, arch) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if cc != "" {
		cmd.Env = append(cmd.Env, "CC="+cc)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the %s Lambda (%s): go %s: %w", f.Name, arch, strings.Join(GoBuildArgs(f, out), " "), err)
	}
	return CheckGlibc(out)
}

// CheckGlibc fails with ErrGlibcTooNew when the binary at path needs a glibc newer than MaxGlibc.
func CheckGlibc(path string) error {
	need, err := GlibcNeeded(path)
	if err != nil {
		return err
	}
	if need != "" && versionLess(MaxGlibc, need) {
		return fmt.Errorf("%w: %s needs glibc %s, provided.al2023 has %s", ErrGlibcTooNew, path, need, MaxGlibc)
	}
	return nil
}

// GlibcNeeded is the newest GLIBC_x.y symbol version the ELF binary at path imports ("" for a static or
// pure-Go binary).
func GlibcNeeded(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.ImportedSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", fmt.Errorf("reading the imported symbols of %s: %w", path, err)
	}
	newest := ""
	for _, s := range syms {
		v, ok := strings.CutPrefix(s.Version, "GLIBC_")
		if ok && (newest == "" || versionLess(newest, v)) {
			newest = v
		}
	}
	return newest, nil
}

// versionLess compares dotted numeric versions ("2.9" < "2.34").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// MachineArch is the Lambda architecture an ELF binary was built for.
func MachineArch(path string) (Arch, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return X86_64, nil
	case elf.EM_AARCH64:
		return ARM64, nil
	}
	return "", fmt.Errorf("%w: %s is built for %s", ErrUnknownArch, path, f.Machine)
}
