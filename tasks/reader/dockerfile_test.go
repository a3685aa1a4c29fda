package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// The image ships the binary the tests run: tasks/reader/Dockerfile builds the reader with go.mod's
// toolchain, and with the same build tags and cgo setting as `make build` and dev/test.sh (which build
// bin/reader for the tests), adding only flags that do not change what is compiled (-trimpath, stripping).
// No Docker engine runs here, so the Dockerfile is read, not built.

// goBuild is one `go build` command: its environment assignments and its arguments after "build".
type goBuild struct {
	where string
	env   map[string]string
	args  []string
}

// flag returns the value of -name (as -name=v or -name v) and whether it is present.
func (b goBuild) flag(name string) (string, bool) {
	for i, a := range b.args {
		a = strings.TrimPrefix(a, "-") // --tags and -tags are the same flag
		switch {
		case a == "-"+name || a == name:
			if i+1 < len(b.args) {
				return b.args[i+1], true
			}
			return "", true
		case strings.HasPrefix(a, name+"="), strings.HasPrefix(a, "-"+name+"="):
			return a[strings.Index(a, "=")+1:], true
		}
	}
	return "", false
}

// words splits a shell command into words, honouring single and double quotes.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// parseGoBuild finds `go build` (or `$(GO) build`) in a command line and returns it with the VAR=value
// assignments written before it.
func parseGoBuild(where, line string) (goBuild, bool) {
	w := words(line)
	b := goBuild{where: where, env: map[string]string{}}
	for i := 0; i+1 < len(w); i++ {
		if (w[i] == "go" || w[i] == "$(GO)") && w[i+1] == "build" {
			for _, a := range w[:i] {
				if k, v, ok := strings.Cut(a, "="); ok && regexp.MustCompile(`^[A-Z_]+$`).MatchString(k) {
					b.env[k] = v
				}
			}
			b.args = w[i+2:]
			return b, true
		}
	}
	return b, false
}

// dockerfile is what the test reads from tasks/reader/Dockerfile.
type dockerfile struct {
	buildImage string            // FROM of the build stage
	buildEnv   map[string]string // ENV of the build stage
	build      goBuild           // the RUN that builds the reader
	user       string            // the final USER
}

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{buildEnv: map[string]string{}}
	stage := ""
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			stage = f[len(f)-1]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") && stage == "build" {
				d.buildImage = f[0]
			}
		case "ENV":
			if stage == "build" {
				for _, kv := range words(rest) {
					if k, v, ok := strings.Cut(kv, "="); ok {
						d.buildEnv[k] = v
					}
				}
			}
		case "RUN":
			if g, ok := parseGoBuild(path, rest); ok && stage == "build" {
				if d.build.args != nil {
					t.Fatalf("%s builds with go more than once", path)
				}
				d.build = g
			}
		case "USER":
			d.user = strings.TrimSpace(rest)
		}
	}
	if d.buildImage == "" || d.build.args == nil || d.user == "" {
		t.Fatalf("%s: build stage %q, go build %v, USER %q: want all three", path, d.buildImage, d.build.args, d.user)
	}
	return d
}

// testBuilds returns the `go build` commands that build bin/reader for the tests: the Makefile's build
// target and dev/test.sh's build phase.
func testBuilds(t *testing.T, root string) []goBuild {
	t.Helper()
	var out []goBuild
	for _, file := range []string{"Makefile", "dev/test.sh"} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			g, ok := parseGoBuild(file, strings.TrimSpace(line))
			if ok && slices.ContainsFunc(g.args, func(a string) bool { return a == "./tasks/..." || a == "./tasks/reader" }) {
				out = append(out, g)
			}
		}
	}
	if len(out) < 2 {
		t.Fatalf("found %d go builds of the reader in Makefile and dev/test.sh, want one in each", len(out))
	}
	return out
}

func TestDockerfileBuildsTheTestedBinary(t *testing.T) {
	root := stacktest.RepoRoot(t)
	d := readDockerfile(t, filepath.Join(root, "tasks/reader/Dockerfile"))

	// The toolchain: go.mod's toolchain line (or its go line when there is none), exactly.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, re := range []string{`(?m)^toolchain go(\S+)$`, `(?m)^go (\S+)$`} {
		if m := regexp.MustCompile(re).FindSubmatch(gomod); m != nil {
			want = string(m[1])
			break
		}
	}
	if want == "" {
		t.Fatal("go.mod has neither a toolchain nor a go line")
	}
	if img := "golang:" + want + "-"; !strings.HasPrefix(d.buildImage, img) {
		t.Errorf("Dockerfile builds in %s, want %s<variant> (go.mod's toolchain)", d.buildImage, img)
	}

	// The Dockerfile's build: the reader's package, -trimpath, cgo on (confluent-kafka-go needs it).
	if !slices.Contains(d.build.args, "./tasks/reader") {
		t.Errorf("Dockerfile's go build %v does not build ./tasks/reader", d.build.args)
	}
	if _, ok := d.build.flag("trimpath"); !ok {
		t.Errorf("Dockerfile's go build %v lacks -trimpath (a reproducible build must not embed the build directory)", d.build.args)
	}
	cgo := d.buildEnv["CGO_ENABLED"]
	if v, ok := d.build.env["CGO_ENABLED"]; ok {
		cgo = v
	}
	if cgo != "1" {
		t.Errorf("Dockerfile builds with CGO_ENABLED=%q, want 1 (as the tests' build, on a machine with a C compiler)", cgo)
	}

	// Everything that changes what is compiled is the same as in the tests' builds.
	semantic := []string{"tags", "race", "msan", "asan", "cover", "gcflags", "asmflags", "buildmode", "mod", "pgo", "ldflags=-X"}
	dTags, _ := d.build.flag("tags")
	for _, g := range testBuilds(t, root) {
		if tags, _ := g.flag("tags"); tags != dTags {
			t.Errorf("%s builds with -tags %q, the Dockerfile with %q", g.where, tags, dTags)
		}
		if v, ok := g.env["CGO_ENABLED"]; ok && v != cgo {
			t.Errorf("%s builds with CGO_ENABLED=%s, the Dockerfile with %s", g.where, v, cgo)
		}
		for _, f := range semantic[1:] {
			name, sub, _ := strings.Cut(f, "=")
			dv, dok := d.build.flag(name)
			gv, gok := g.flag(name)
			if sub != "" {
				dok, gok = strings.Contains(dv, sub), strings.Contains(gv, sub)
				dv, gv = "", ""
			}
			if dok != gok || dv != gv {
				t.Errorf("-%s differs: %s has %v %q, the Dockerfile %v %q", f, g.where, gok, gv, dok, dv)
			}
		}
	}

	// A numeric, non-root user: ECS's task definition names the same one, and a numeric id needs no
	// /etc/passwd lookup in the image to be known as non-root.
	uid, gid, _ := strings.Cut(d.user, ":")
	u, err := strconv.Atoi(uid)
	if err != nil || u == 0 {
		t.Errorf("Dockerfile USER %q: want a numeric non-root uid", d.user)
	}
	if g, err := strconv.Atoi(gid); gid != "" && (err != nil || g == 0) {
		t.Errorf("Dockerfile USER %q: want a numeric non-root gid", d.user)
	}
}

// withoutOutput returns args without -o and its value: where the binary is written is not how it is built.
func withoutOutput(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch a := strings.TrimPrefix(args[i], "-"); {
		case a == "-o" || a == "o":
			i++
		case strings.HasPrefix(a, "-o=") || strings.HasPrefix(a, "o="):
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// TestImageScriptBuildsAsTheDockerfile: dev/image.sh, which builds the image here without a registry, builds
// the reader with the Dockerfile's command, flag for flag and with the same cgo setting (its toolchain is
// go.mod's too, through GOTOOLCHAIN=auto; the image test reads the built binary's build information).
func TestImageScriptBuildsAsTheDockerfile(t *testing.T) {
	root := stacktest.RepoRoot(t)
	d := readDockerfile(t, filepath.Join(root, "tasks/reader/Dockerfile"))
	b, err := os.ReadFile(filepath.Join(root, "dev/image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var builds []goBuild
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "#") {
			continue
		}
		if g, ok := parseGoBuild("dev/image.sh", line); ok {
			builds = append(builds, g)
		}
	}
	if len(builds) != 1 {
		t.Fatalf("dev/image.sh has %d go builds, want 1 (the reader's)", len(builds))
	}
	g := builds[0]
	if got, want := withoutOutput(g.args), withoutOutput(d.build.args); !slices.Equal(got, want) {
		t.Errorf("dev/image.sh builds with %q, the Dockerfile with %q (-o aside)", got, want)
	}
	cgo := d.buildEnv["CGO_ENABLED"]
	if v, ok := d.build.env["CGO_ENABLED"]; ok {
		cgo = v
	}
	if g.env["CGO_ENABLED"] != cgo {
		t.Errorf("dev/image.sh builds with CGO_ENABLED=%q on its command line, the Dockerfile with %q", g.env["CGO_ENABLED"], cgo)
	}
	if !strings.Contains(string(b), "GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto}") {
		t.Error("dev/image.sh does not build with GOTOOLCHAIN=auto (go.mod's toolchain, the Dockerfile's golang tag)")
	}
}
