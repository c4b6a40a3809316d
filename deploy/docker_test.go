package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/switchyard-dev/switchyard/internal/bus"
)

// stage is one FROM ... of the Dockerfile and its instructions.
type stage struct {
	image, name  string
	instructions []*parser.Node
}

// dockerfile is the parsed Dockerfile and its documented build command.
type dockerfile struct {
	stages       []stage
	buildCommand string // after "# Build:" in the header
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	data := readRepoFile(t, "Dockerfile")
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(res.Warnings) > 0 {
		for _, w := range res.Warnings {
			t.Errorf("Dockerfile: %s", w.Short)
		}
	}
	d := &dockerfile{}
	for _, n := range res.AST.Children {
		n.Value = strings.ToLower(n.Value) // the instruction, as written
		if n.Value == "from" {
			s := stage{image: n.Next.Value}
			if n.Next.Next != nil && strings.EqualFold(n.Next.Next.Value, "as") && n.Next.Next.Next != nil {
				s.name = n.Next.Next.Next.Value
			}
			d.stages = append(d.stages, s)
			continue
		}
		if len(d.stages) == 0 {
			if n.Value != "arg" {
				t.Fatalf("Dockerfile:%d: %s before FROM", n.StartLine, n.Value)
			}
			continue
		}
		last := &d.stages[len(d.stages)-1]
		last.instructions = append(last.instructions, n)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if cmd, ok := strings.CutPrefix(sc.Text(), "# Build:"); ok {
			d.buildCommand = strings.TrimSpace(cmd)
		}
	}
	return d
}

// args returns an instruction's arguments.
func args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// find returns a stage's instructions of one kind (lower case: "run").
func (s *stage) find(kind string) []*parser.Node {
	var out []*parser.Node
	for _, n := range s.instructions {
		if n.Value == kind {
			out = append(out, n)
		}
	}
	return out
}

// goBuild is the go build command of the Dockerfile's build stage: the
// environment it sets, and the go command's arguments.
type goBuild struct {
	env  []string
	args []string // after "go"
}

// findGoBuild finds the RUN line that runs go build, and splits it into
// words as a shell would, with ${VERSION} expanded to version.
func findGoBuild(t *testing.T, d *dockerfile, version string) (*stage, goBuild) {
	t.Helper()
	for i := range d.stages {
		s := &d.stages[i]
		for _, n := range s.find("run") {
			if len(n.Flags) > 0 || n.Attributes["json"] {
				continue
			}
			cmd := strings.Join(args(n), " ")
			if !strings.Contains(cmd, "go build") {
				continue
			}
			lex := shell.NewLex('\\')
			words, err := lex.ProcessWords(cmd, shell.EnvsFromSlice([]string{"VERSION=" + version}))
			if err != nil {
				t.Fatalf("Dockerfile:%d: %v", n.StartLine, err)
			}
			var b goBuild
			for len(words) > 0 && strings.Contains(words[0], "=") {
				b.env, words = append(b.env, words[0]), words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("Dockerfile:%d: %q: want [VAR=value ...] go build ...", n.StartLine, cmd)
			}
			b.args = words[1:]
			return s, b
		}
	}
	t.Fatal("Dockerfile: no RUN ... go build")
	return nil, goBuild{}
}

// flagValue returns the value of -name VALUE or -name=VALUE.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t)
	if len(d.stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(d.stages))
	}
	final := d.stages[len(d.stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static...:nonroot (no shell, no libc, a non-root user)", final.image)
	}
	users := final.find("user")
	if len(users) == 0 {
		t.Fatal("final stage has no USER")
	}
	if u := args(users[len(users)-1]); len(u) != 1 || u[0] != imageUser {
		t.Errorf("USER %v, want %s (numeric, so ECS and Kubernetes can tell it is not root)", u, imageUser)
	}
	if ep := final.find("entrypoint"); len(ep) != 1 || !slices.Equal(args(ep[0]), []string{imageBinary}) {
		t.Errorf("ENTRYPOINT: want [%q], which the health checks run", imageBinary)
	}
	if cmd := final.find("cmd"); len(cmd) != 1 || !slices.Equal(args(cmd[0]), []string{"run"}) {
		t.Error(`CMD: want ["run"]`)
	}
	if e := final.find("expose"); len(e) != 1 || !slices.Equal(args(e[0]), []string{"9090"}) {
		t.Error("EXPOSE: want 9090, the admin port")
	}
	if v := final.find("volume"); len(v) != 1 || !slices.Equal(args(v[0]), []string{imageDataDir}) {
		t.Errorf("VOLUME: want %s (ECS copies its ownership to the task's volume)", imageDataDir)
	}
	var envs []string
	for _, e := range final.find("env") {
		a := args(e) // key, value, separator, for each pair
		for i := 0; i+1 < len(a); i += 3 {
			envs = append(envs, a[i]+"="+a[i+1])
		}
	}
	// SWITCHYARD_CONFIG set in the image would make the task
	// definitions' SWITCHYARD_CONFIG_YAML ambiguous (an error): the default
	// ./switchyard.yaml, in the working directory, is the config path.
	for _, e := range envs {
		if strings.HasPrefix(e, "SWITCHYARD_CONFIG=") {
			t.Errorf("ENV %s: the image must not set SWITCHYARD_CONFIG (it conflicts with SWITCHYARD_CONFIG_YAML)", e)
		}
	}
	if w := final.find("workdir"); len(w) != 1 || !slices.Equal(args(w[0]), []string{"/etc/switchyard"}) {
		t.Error("WORKDIR: want /etc/switchyard, where the default ./switchyard.yaml is")
	}

	build, gb := findGoBuild(t, d, "v1.2.3")
	if build == &d.stages[len(d.stages)-1] {
		t.Error("go build runs in the final stage")
	}
	if !slices.Contains(gb.env, "CGO_ENABLED=0") {
		t.Errorf("go build environment %v: want CGO_ENABLED=0 (a static binary for distroless/static)", gb.env)
	}
	if !slices.Contains(gb.args, "-trimpath") {
		t.Error("go build without -trimpath")
	}
	ld, _ := flagValue(gb.args, "-ldflags")
	if f := strings.Fields(ld); !slices.Contains(f, "-s") || !slices.Contains(f, "-w") || !slices.Contains(f, "main.version=v1.2.3") {
		t.Errorf(`-ldflags %q: want "-s -w -X main.version=${VERSION}"`, ld)
	}
	out, ok := flagValue(gb.args, "-o")
	if !ok || gb.args[len(gb.args)-1] != "./cmd/switchyard" {
		t.Errorf("go build %v: want -o OUT ./cmd/switchyard", gb.args)
	}
	copied := false
	for _, c := range final.find("copy") {
		a := args(c)
		copied = copied || (slices.Contains(c.Flags, "--from="+build.name) && len(a) == 2 && a[0] == out && a[1] == imageBinary)
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=%s %s %s", build.name, out, imageBinary)
	}

	// The README documents the same build command as the Dockerfile.
	if !strings.HasPrefix(d.buildCommand, "docker build ") {
		t.Fatalf("the Dockerfile header has no \"# Build:  docker build ...\" line")
	}
	if !strings.Contains(string(readRepoFile(t, "README.md")), "\n"+d.buildCommand+"\n") {
		t.Errorf("README.md does not document the build command on a line of its own: %s", d.buildCommand)
	}
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	var patterns []string
	for line := range strings.Lines(string(readRepoFile(t, ".dockerignore"))) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, p := range []string{".git", "/switchyard", "*.test"} {
		if !slices.Contains(patterns, p) {
			t.Errorf(".dockerignore does not leave out %s", p)
		}
	}
	// What go build needs must stay in the context.
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "internal", "router", "sources", "sinks", "policy", "deploy"} {
		for _, p := range patterns {
			if m, _ := filepath.Match(strings.TrimPrefix(p, "/"), keep); m || p == keep {
				t.Errorf(".dockerignore pattern %q leaves out %s, which go build needs", p, keep)
			}
		}
	}
}

// TestDockerfile_BuildsStaticBinary builds the binary the way the
// Dockerfile's RUN line does (there is no Docker engine to run it in) and
// checks what the image relies on: static, stripped, version stamped, and
// able to validate the sidecar config.
func TestDockerfile_BuildsStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: a minute and more with a cold build cache")
	}
	t.Parallel()
	const version = "v0.0.0-deploytest"
	_, gb := findGoBuild(t, parseDockerfile(t), version)
	bin := filepath.Join(t.TempDir(), "switchyard")
	args := slices.Clone(gb.args)
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = bin
		}
	}
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), gb.env...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: not stripped (-s)")
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Error("the binary has DWARF: not built with -w")
	}

	out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("switchyard version: %q, %v; want %s", out, err, version)
	}
	validate := exec.CommandContext(t.Context(), bin, "validate", "-c", sidecarConfig)
	validate.Dir = repoRoot
	validate.Env = []string{"PATH=" + os.Getenv("PATH")} // no ${VAR}s set: the defaults apply
	if out, err := validate.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("switchyard validate -c %s: %q, %v", sidecarConfig, out, err)
	}
}

// imageEntry is a path in a model of an image: a directory, or a symbolic
// link, and its owner.
type imageEntry struct {
	link  string // the link's target; "" for a directory
	owner string // uid:gid
}

// imageFS models the file system a stage makes, as far as what the image's
// writable paths depend on: directories and symbolic links, their owners,
// the working directory and the volumes. RUN lines are modelled for
// mkdir -p and ln -s, COPY --from of such paths, WORKDIR and VOLUME.
type imageFS struct {
	entries map[string]imageEntry
	workdir string
	volumes []string
}

// modelStage builds the model of stage s; stages are the models of the
// stages before it, by name.
func modelStage(t *testing.T, s *stage, stages map[string]*imageFS) *imageFS {
	t.Helper()
	fs := &imageFS{entries: map[string]imageEntry{}, workdir: "/"}
	mkdir := func(p, owner string) {
		for d := p; d != "/" && d != "."; d = filepath.Dir(d) {
			if _, ok := fs.entries[d]; !ok {
				fs.entries[d] = imageEntry{owner: owner}
			}
		}
	}
	lex := shell.NewLex('\\')
	for _, n := range s.instructions {
		a := args(n)
		switch n.Value {
		case "workdir":
			fs.workdir = fs.abs(a[0])
			mkdir(fs.workdir, "0:0")
		case "volume":
			for _, v := range a {
				fs.volumes = append(fs.volumes, filepath.Clean(v))
			}
		case "run":
			if n.Attributes["json"] {
				continue
			}
			for cmd := range strings.SplitSeq(strings.Join(a, " "), "&&") {
				words, err := lex.ProcessWords(strings.TrimSpace(cmd), shell.EnvsFromSlice(nil))
				if err != nil {
					t.Fatalf("Dockerfile:%d: %v", n.StartLine, err)
				}
				switch {
				case len(words) > 2 && words[0] == "mkdir" && words[1] == "-p":
					for _, d := range words[2:] {
						mkdir(fs.abs(d), "0:0")
					}
				case len(words) == 4 && words[0] == "ln" && words[1] == "-s":
					link := fs.abs(words[3])
					mkdir(filepath.Dir(link), "0:0")
					fs.entries[link] = imageEntry{link: words[2], owner: "0:0"}
				}
			}
		case "copy":
			var from, owner string
			for _, f := range n.Flags {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					from = v
				}
				if v, ok := strings.CutPrefix(f, "--chown="); ok {
					owner = v
				}
			}
			src := stages[from]
			if src == nil || len(a) != 2 {
				continue // the build context: files, not modelled
			}
			if owner == "" {
				owner = "0:0"
			}
			dir, dst := filepath.Clean(a[0]), fs.abs(a[1])
			if e, ok := src.entries[dir]; !ok || e.link != "" {
				continue // a file
			}
			// A directory's contents are copied, links as links.
			mkdir(dst, owner)
			fs.entries[dst] = imageEntry{owner: owner}
			for p, e := range src.entries {
				if rel, ok := strings.CutPrefix(p, dir+"/"); ok {
					e.owner = owner
					fs.entries[filepath.Join(dst, rel)] = e
				}
			}
		}
	}
	return fs
}

// abs is p, absolute or relative to the working directory, made absolute.
func (fs *imageFS) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(fs.workdir, p)
}

// resolve follows the symbolic links along p (absolute, or relative to the
// working directory).
func (fs *imageFS) resolve(p string) string {
	p = fs.abs(p)
	for range 40 {
		changed := false
		for d := p; d != "/"; d = filepath.Dir(d) {
			if e, ok := fs.entries[d]; ok && e.link != "" {
				p = filepath.Join(e.link, strings.TrimPrefix(p, d))
				changed = true
				break
			}
		}
		if !changed {
			return p
		}
	}
	return p
}

// The embedded NATS server's default store, ./data/nats, is writable in
// the image as its user with the root file system read-only (ECS
// readonlyRootFilesystem, docker run --read-only): it lies on a volume the
// image's user owns.
func TestDockerfile_DefaultStoreDirIsWritable(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t)
	stages := map[string]*imageFS{}
	var final *imageFS
	for i := range d.stages {
		final = modelStage(t, &d.stages[i], stages)
		if d.stages[i].name != "" {
			stages[d.stages[i].name] = final
		}
	}
	var nats bus.Config
	nats.SetDefaults()
	dir := final.resolve(nats.StoreDir)
	var volume string
	for _, v := range final.volumes {
		if dir == v || strings.HasPrefix(dir, v+"/") {
			volume = v
		}
	}
	if volume == "" {
		t.Fatalf("the default nats.store_dir %s is %s in the image, on no volume (volumes %v): not writable with a read-only root", nats.StoreDir, dir, final.volumes)
	}
	if e := final.entries[volume]; e.owner != imageUser {
		t.Errorf("the default nats.store_dir %s is %s, on volume %s owned by %q: want %s, the image's user", nats.StoreDir, dir, volume, e.owner, imageUser)
	}
	if volume != imageDataDir {
		t.Errorf("the default nats.store_dir is on volume %s, want %s, where the task definitions mount theirs", volume, imageDataDir)
	}
}
