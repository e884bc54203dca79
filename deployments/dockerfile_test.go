package deployments

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

type instruction struct {
	cmd  string // upper case
	args string
}

func loadDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := loadDockerfile(t)
	args := map[string]string{}
	var froms []string
	var runtime []instruction // instructions of the last stage
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			if _, set := args[k]; !set {
				args[k] = v
			}
		case "FROM":
			img := in.args
			for _, f := range strings.Fields(in.args) {
				if !strings.HasPrefix(f, "--") {
					img = f
					break
				}
			}
			for k, v := range args {
				img = strings.ReplaceAll(strings.ReplaceAll(img, "${"+k+"}", v), "$"+k, v)
			}
			froms = append(froms, img)
			runtime = nil
		}
		runtime = append(runtime, in)
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build (builder and runtime), got FROM %v", froms)
	}

	// Builder: a golang image new enough for go.mod (the golang images set GOTOOLCHAIN=local,
	// so an older one fails instead of downloading a toolchain).
	builder := froms[0]
	goVersion, ok := strings.CutPrefix(builder, "golang:")
	if !ok {
		t.Fatalf("builder %q is not a golang image", builder)
	}
	goVersion, _, _ = strings.Cut(goVersion, "-")
	if want := goDirective(t); compareVersions(goVersion, majorMinor(want)) < 0 {
		t.Errorf("builder golang:%s is older than go.mod's go %s", goVersion, want)
	}

	// The build.
	var build string
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X " + modulePath + "/cli.Version="} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step %q lacks %q", build, want)
		}
	}
	if f := strings.Fields(build); len(f) == 0 || f[len(f)-1] != "./cmd/remediator" {
		t.Errorf("the go build step %q does not build ./cmd/remediator", build)
	}
	if !versionVarExists(t) {
		t.Errorf("-X %s/cli.Version names no string variable Version in package cli: --version would say dev", modulePath)
	}
	if fi, err := os.Stat(filepath.Join(repoRoot, "cmd", "remediator", "main.go")); err != nil || fi.IsDir() {
		t.Errorf("./cmd/remediator/main.go: %v", err)
	}
	out := ""
	if m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build); m != nil {
		out = m[1]
	}

	// Runtime: distroless, nonroot, the binary as the entrypoint, `run` by default.
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("runtime image %q, want gcr.io/distroless/static-debian12:nonroot", final)
	}
	user, entry, cmd, copied, exposed := "", "", "", false, ""
	for _, in := range runtime {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "CMD":
			cmd = in.args
		case "COPY":
			copied = copied || (strings.Contains(in.args, "--from=") && out != "" && strings.Fields(in.args)[len(strings.Fields(in.args))-1] == out)
		case "EXPOSE":
			exposed = in.args
		case "HEALTHCHECK":
			t.Errorf("HEALTHCHECK %q: distroless has no shell or HTTP client; it would always fail", in.args)
		}
	}
	if user != "nonroot" && user != "65532" && user != "65532:65532" && user != "nonroot:nonroot" {
		t.Errorf("runtime USER %q, want nonroot", user)
	}
	var entryArgs, cmdArgs []string
	if err := json.Unmarshal([]byte(entry), &entryArgs); err != nil || len(entryArgs) == 0 || entryArgs[0] != out {
		t.Errorf("ENTRYPOINT %s, want the exec form [%q] (the binary built with -o)", entry, out)
	}
	if err := json.Unmarshal([]byte(cmd), &cmdArgs); err != nil || !slices.Equal(cmdArgs, []string{"run"}) {
		t.Errorf(`CMD %s, want ["run"]`, cmd)
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from the builder's %s", out)
	}
	if exposed != "8080" {
		t.Errorf("EXPOSE %q, want 8080 (http.addr in the deployment configurations)", exposed)
	}
}

func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// versionVarExists reports whether package cli declares `var Version string` (or = "...").
func versionVarExists(t *testing.T) bool {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(repoRoot, "cli", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "Version" {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						return true
					}
					if vs.Type == nil && i < len(vs.Values) {
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// TestDockerignoreKeepsBuildInputs: every file `go build ./cmd/remediator` reads (go.mod,
// go.sum, the module's Go and embedded files) must be in the build context.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	b, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatal(err)
	}
	ignore := parseDockerignore(string(b))

	cmd := exec.Command(goBin, "list", "-e", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/remediator")
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(outb))
	for dec.More() {
		var p struct {
			Dir        string
			GoFiles    []string
			EmbedFiles []string
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != modulePath {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(slices.Clone(p.GoFiles), p.EmbedFiles...) {
			inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(inputs) < 3 {
		t.Fatalf("go list found no source files of %s", modulePath)
	}
	for _, f := range inputs {
		if ignore.excludes(f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
	// And it must keep local state out of the image build context.
	for _, f := range []string{".git/config", "data/nats/jetstream/x"} {
		if !ignore.excludes(f) {
			t.Errorf(".dockerignore does not exclude %s", f)
		}
	}
}

type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func parseDockerignore(s string) dockerignore {
	var out dockerignore
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(line, "!")
		line = strings.Trim(path.Clean("/"+line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == '*' && i+1 < len(line) && line[i+1] == '*':
				re.WriteString(".*")
				i++
				if i+1 < len(line) && line[i+1] == '/' {
					re.WriteString("/?")
					i++
				}
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		out = append(out, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return out
}

// excludes reports whether a path (slash-separated, relative to the context) is left out of
// the build context: a pattern matching the path or one of its parent directories excludes
// it; the last matching pattern wins.
func (d dockerignore) excludes(p string) bool {
	excluded := false
	parts := strings.Split(p, "/")
	for _, rule := range d {
		for i := 1; i <= len(parts); i++ {
			if rule.re.MatchString(strings.Join(parts[:i], "/")) {
				excluded = !rule.negate
				break
			}
		}
	}
	return excluded
}
