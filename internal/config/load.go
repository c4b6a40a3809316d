package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	goccyparser "github.com/goccy/go-yaml/parser"
	goccytoken "github.com/goccy/go-yaml/token"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
	natssource "github.com/switchyard-dev/switchyard/sources/nats"
)

// Load reads, decodes and validates the config file at path, expanding
// ${NAME} from the process environment. A file with problems yields an
// Errors listing every one of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse decodes and validates data as the config file named file. lookup
// resolves ${NAME}; nil means the process environment. Problems are
// returned as Errors, sorted by position.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	d := &decoder{file: file, raw: map[*yaml.Node]string{}, nodes: map[string]*yaml.Node{}, failed: map[string]bool{}}
	root, err := parseYAML(data)
	if err != nil {
		return nil, Errors{d.syntaxError(data, err)}
	}
	if root == nil {
		return nil, Errors{{File: file, Msg: "the file is empty (see docs/config.md for its shape)"}}
	}
	d.maxVisits = max(100_000, 10*countNodes(root))
	d.expandEnv(root, "", lookup)
	c := &Config{File: file}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	c.setDefaults()
	d.defaultedZeros()
	d.validate(c)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return c, nil
}

var errSecondDocument = errors.New("a config file holds one YAML document, found another")

// parseYAML parses exactly one YAML document and returns its root, or nil
// for an empty file.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: %w", more.Line, errSecondDocument)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// syntaxError turns a YAML parser error into an Error. yaml.v3 reports the
// line where the construct being parsed began (a list two lines up, say),
// not where the problem is, and no column; so the problem is located again
// with a second parser, whose line and column point at the offending
// token. Its finding is used when it is at or after yaml.v3's line (the
// same mistake, placed exactly); otherwise yaml.v3's line stands alone.
func (d *decoder) syntaxError(data []byte, err error) *Error {
	msg := err.Error()
	e := &Error{File: d.file, Msg: strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
		if errors.Is(err, errSecondDocument) {
			e.Col = 1
		}
	}
	if !errors.Is(err, errSecondDocument) {
		if line, col, what, ok := locateSyntaxError(data); ok && line >= e.Line {
			e.Line, e.Col, e.Msg = line, col, what
		}
	}
	e.Msg = "invalid YAML: " + e.Msg
	return e
}

// locateSyntaxError parses data with goccy/go-yaml and returns the position
// and message of the syntax error it finds, if any.
func locateSyntaxError(data []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil { // its failure must not become ours
			ok = false
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0)
	var se interface {
		GetMessage() string
		GetToken() *goccytoken.Token
	}
	if !errors.As(err, &se) {
		return 0, 0, "", false
	}
	tk := se.GetToken()
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 || tk.Position.Column < 1 {
		return 0, 0, "", false
	}
	// It quotes the offending character as it is, a tab included.
	return tk.Position.Line, tk.Position.Column, strings.ReplaceAll(se.GetMessage(), "\t", `\t`), true
}

// mapValue returns the value of key in a mapping node, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// kindKeys lists the keys of a kind, and decodes name and type.
func (d *decoder) decodeKind(n *yaml.Node, path, what string, kinds map[string]func() Kind, common []string, name, typ *string) Kind {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with name and type, got %s", d.describe(n))
		return nil
	}
	valid := slices.Sorted(maps.Keys(kinds))
	for _, k := range []struct {
		key string
		dst *string
	}{{"name", name}, {"type", typ}} {
		v := mapValue(n, k.key)
		if v == nil {
			if k.key == "type" {
				d.errorf(n, path, "missing required key \"type\" (valid: %s)", strings.Join(valid, ", "))
			} else {
				d.errorf(n, path, "missing required key %q", k.key)
			}
			continue
		}
		d.decode(v, reflect.ValueOf(k.dst).Elem(), joinPath(path, k.key))
	}
	if *typ == "" {
		return nil
	}
	mk, ok := kinds[*typ]
	if !ok {
		d.errorf(mapValue(n, "type"), joinPath(path, "type"), "unknown %s type %q%s", what, *typ, suggest(*typ, valid))
		return nil
	}
	k := mk()
	d.decodeStruct(n, reflect.ValueOf(k).Elem(), path, common)
	return k
}

func (s *Source) decodeNode(d *decoder, n *yaml.Node, path string) {
	s.Config = d.decodeKind(n, path, "source", sourceKinds, []string{"name", "type"}, &s.Name, &s.Type)
}

func (t *Target) decodeNode(d *decoder, n *yaml.Node, path string) {
	t.Config = d.decodeKind(n, path, "target", targetKinds, []string{"name", "type", "policy", "backlog"}, &t.Name, &t.Type)
	if v := mapValue(n, "policy"); v != nil {
		d.decode(v, reflect.ValueOf(&t.Policy).Elem(), joinPath(path, "policy"))
	}
	if v := mapValue(n, "backlog"); v != nil && v.Tag != "!!null" {
		t.Backlog = new(backlog.Config)
		d.decode(v, reflect.ValueOf(t.Backlog).Elem(), joinPath(path, "backlog"))
	}
}

func (p *Pattern) decodeNode(d *decoder, n *yaml.Node, path string) {
	before := len(d.errs)
	defer func() {
		if len(d.errs) > before {
			d.failed[path] = true // reported; not "missing" as well
		}
	}()
	var data []byte
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		data = []byte(n.Value) // a pattern pasted as JSON
	} else {
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected an event pattern (a mapping, or a JSON string), got %s", d.describe(n))
			return
		}
		var ok bool
		if data, ok = d.appendJSON(nil, n, path); !ok {
			return
		}
	}
	pat, err := router.ParsePattern(data)
	if err != nil {
		var pe *router.PatternError
		if errors.As(err, &pe) && n.Kind == yaml.MappingNode {
			at, _ := walk(n, pe.Path)
			d.errorf(at, joinPattern(path, pe.Path), "%s", pe.Msg)
			return
		}
		if errors.As(err, &pe) {
			d.errorf(n, joinPattern(path, pe.Path), "%s", pe.Msg)
			return
		}
		d.errorf(n, path, "%v", err)
		return
	}
	p.Pattern, p.JSON = pat, data
	d.envelopeTypes(n, path, data)
}

// joinPattern appends a pattern error's path (keys and [i] positions).
func joinPattern(path string, elems []string) string {
	for _, e := range elems {
		if strings.HasPrefix(e, "[") {
			path += e
		} else {
			path = joinPath(path, e)
		}
	}
	return path
}

// walk follows path elements (keys, and [i] for list positions) from n and
// returns the deepest node reached, and whether it reached the end.
func walk(n *yaml.Node, elems []string) (*yaml.Node, bool) {
	for _, e := range elems {
		n = deref(n)
		var next *yaml.Node
		if i, ok := listIndex(e); ok && n.Kind == yaml.SequenceNode {
			if i < len(n.Content) {
				next = n.Content[i]
			}
		} else {
			next = mapValue(n, e)
		}
		if next == nil {
			return n, false
		}
		n = next
	}
	return n, true
}

func listIndex(e string) (int, bool) {
	if !strings.HasPrefix(e, "[") || !strings.HasSuffix(e, "]") {
		return 0, false
	}
	i, err := strconv.Atoi(e[1 : len(e)-1])
	return i, err == nil
}

// splitPath splits a FieldError path such as a.b[2].c into a, b, [2], c.
func splitPath(p string) []string {
	var out []string
	for part := range strings.SplitSeq(p, ".") {
		for part != "" {
			i := strings.IndexByte(part[1:], '[') + 1
			if i == 0 {
				out = append(out, part)
				break
			}
			out = append(out, part[:i])
			part = part[i:]
		}
	}
	return out
}

// inputForm says which form a key of a rule's input writes: a
// transformer in switchyard's spelling ("paths"), in EventBridge's flat
// ("flat") or inside InputTransformer ("nested"); InputPath ("path"); or
// Input ("constant"). "" for other keys.
func inputForm(key string) string {
	switch key {
	case "paths", "template":
		return "paths"
	case "InputPathsMap", "InputTemplate":
		return "flat"
	case "InputTransformer":
		return "nested"
	case "InputPath":
		return "path"
	case "Input":
		return "constant"
	}
	return ""
}

func isTransformer(form string) bool { return form == "paths" || form == "flat" || form == "nested" }

func (in *Input) decodeNode(d *decoder, n *yaml.Node, path string) {
	d.decodeStruct(n, reflect.ValueOf(in).Elem(), path, nil)
	if n.Kind != yaml.MappingNode {
		return
	}
	// One form, in one spelling: the first key of a form decides, and a
	// key of another is reported, naming both.
	var first *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		f := inputForm(k.Value)
		switch {
		case f == "":
		case first == nil:
			first = k
		case inputForm(first.Value) == f:
		case isTransformer(inputForm(first.Value)) && isTransformer(f):
			d.errorf(k, joinPath(path, k.Value), "%q beside %q: one transformer in two spellings; write it in one: paths and template, InputPathsMap and InputTemplate, or InputTransformer with those two", k.Value, first.Value)
			return
		default:
			d.errorf(k, joinPath(path, k.Value), "%q beside %q: an input is one of a transformer (paths and template, or InputPathsMap and InputTemplate, or InputTransformer), InputPath or Input, as an EventBridge target has one of InputTransformer, InputPath or Input; keep one", k.Value, first.Value)
			return
		}
	}
	form := "paths" // none written: template is missing
	if first != nil {
		form = inputForm(first.Value)
	}
	for _, k := range []string{"InputPathsMap", "InputTemplate", "InputTransformer", "InputPath", "Input"} {
		if d.failed[joinPath(path, k)] {
			return // reported where it was decoded
		}
	}
	// rename gives a transformer's field errors the keys they were
	// written with.
	rename := func(err error, f func(string) string) error {
		var out []error
		for _, fe := range router.FieldErrors(err) {
			out = append(out, &router.FieldError{Field: f(fe.Field), Msg: fe.Msg})
		}
		return errors.Join(out...)
	}
	eventBridgeKeys := func(prefix string) func(string) string {
		return func(f string) string {
			switch {
			case f == "template":
				return prefix + "InputTemplate"
			case f == "paths" || strings.HasPrefix(f, "paths."):
				return prefix + "InputPathsMap" + strings.TrimPrefix(f, "paths")
			}
			return f
		}
	}
	var t *router.Transformer
	var err error
	switch form {
	case "paths":
		t, err = router.NewTransformer(in.Paths, in.Template)
	case "flat":
		t, err = router.NewTransformer(in.InputPathsMap, in.InputTemplate)
		err = rename(err, eventBridgeKeys(""))
	case "nested":
		it := in.InputTransformer
		if it == nil {
			d.errorf(mapValue(n, "InputTransformer"), joinPath(path, "InputTransformer"), "empty: write InputPathsMap and InputTemplate in it")
			return
		}
		t, err = router.NewTransformer(it.InputPathsMap, it.InputTemplate)
		err = rename(err, eventBridgeKeys("InputTransformer."))
	case "path":
		if in.InputPath == "" {
			d.errorf(mapValue(n, "InputPath"), joinPath(path, "InputPath"), "required: a JSON path into the event, such as $.detail")
			return
		}
		// What paths {v: PATH} and template <v> render.
		t, err = router.NewTransformer(map[string]string{"v": in.InputPath}, "<v>")
		err = rename(err, func(string) string { return "InputPath" })
	case "constant":
		if t, err = router.NewConstant(in.Input); err != nil {
			d.errorf(mapValue(n, "Input"), joinPath(path, "Input"), "%v", err)
			return
		}
	}
	if err != nil {
		d.fieldErrors(n, path, err)
		return
	}
	in.Transformer = t
}

// fieldErrors reports router.FieldErrors relative to the block at n.
func (d *decoder) fieldErrors(n *yaml.Node, path string, err error) {
	for _, fe := range router.FieldErrors(err) {
		at, _ := walk(n, splitPath(fe.Field))
		p := path
		if fe.Field != "" {
			p = joinPath(path, fe.Field)
		}
		d.errorf(at, p, "%s", fe.Msg)
	}
}

// nameRE is compiled on first use, as are the package's other expressions:
// a command that reads no config (version) does not pay for them.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`) })

// validate checks the decoded file as a whole.
func (d *decoder) validate(c *Config) {
	if c.Version != 1 && !d.failed["version"] {
		if n := d.nodes["version"]; n != nil {
			d.errorf(n, "version", "unsupported version %d (this switchyard reads version 1)", c.Version)
		} else {
			d.errorf(d.nodes[""], "", "missing required key \"version\" (write version: 1)")
		}
	}
	if c.MaxInFlight < 1 {
		d.errorf(d.at("max_in_flight"), "max_in_flight", "must be at least 1, got %d", c.MaxInFlight)
	}
	if c.MaxInFlightBytes < size.MiB {
		d.errorf(d.at("max_in_flight_bytes"), "max_in_flight_bytes", "must be at least 1MiB, got %s", c.MaxInFlightBytes)
	}
	if c.ShutdownGrace < 0 {
		d.errorf(d.at("shutdown_grace"), "shutdown_grace", "must be positive")
	}
	d.fieldErrors(d.at("tracing"), "tracing", c.Tracing.Validate())
	d.fieldErrors(d.at("log"), "log", c.Log.Validate())
	if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil && c.Admin.Listen != "none" {
		d.errorf(d.at("admin.listen"), "admin.listen", "want host:port, such as 127.0.0.1:9090, or none")
	}
	d.fieldErrors(d.at("nats"), "nats", c.NATS.Validate())
	d.fieldErrors(d.at("ledger"), "ledger", c.Ledger.Validate())
	d.fieldErrors(d.at("fleet"), "fleet", c.Fleet.Validate())
	if c.NATS.Embedded() && c.Ledger.Replicas > 1 {
		d.errorf(d.at("ledger.replicas"), "ledger.replicas", "replicas are copies on a NATS cluster: set nats.url, or leave replicas at 1")
	}
	for key, ep := range map[string]string{"sqs": c.AWS.Endpoints.SQS, "lambda": c.AWS.Endpoints.Lambda, "ecs": c.AWS.Endpoints.ECS, "eventbridge": c.AWS.Endpoints.EventBridge,
		"stepfunctions": c.AWS.Endpoints.StepFunctions, "sns": c.AWS.Endpoints.SNS, "kinesis": c.AWS.Endpoints.Kinesis} {
		if ep == "" {
			continue
		}
		if p, err := url.Parse(ep); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			d.errorf(d.at("aws.endpoints."+key), "aws.endpoints."+key, "want an http:// or https:// URL")
		}
	}

	sources := d.names("sources", "source", len(c.Sources), func(i int) string { return c.Sources[i].Name })
	targets := d.names("targets", "target", len(c.Targets), func(i int) string { return c.Targets[i].Name })
	d.names("rules", "rule", len(c.Rules), func(i int) string { return c.Rules[i].Name })
	for _, s := range []string{"sources", "targets", "rules"} {
		if n := d.nodes[s]; (n == nil || len(n.Content) == 0) && !d.failed[s] {
			d.errorf(d.at(s), s, "at least one is required")
		}
	}

	for i, s := range c.Sources {
		if s.Config != nil {
			d.fieldErrors(d.nodes[indexPath("sources", i)], indexPath("sources", i), s.Config.Validate())
		}
		if h, ok := s.Config.(*httpsource.Config); ok && h.MaxBody > c.MaxInFlightBytes && c.MaxInFlightBytes >= size.MiB {
			p := indexPath("sources", i) + ".max_body"
			d.errorf(d.at(p), p, "%s exceeds max_in_flight_bytes (%s): a body that large could only be taken with nothing else in flight; raise max_in_flight_bytes", h.MaxBody, c.MaxInFlightBytes)
		}
		if dl, ok := s.Config.(interface{ DeadLetterTarget() string }); ok {
			if t := dl.DeadLetterTarget(); t != "" && !targets[t] {
				p := indexPath("sources", i) + ".dead_letter"
				d.errorf(d.at(p), p, "unknown target %q%s", t, suggestName(t, slices.Sorted(maps.Keys(targets))))
			}
		}
	}
	d.sharedConsumers(c)
	d.queueRegions(c)
	d.arnRegions(c)
	d.stateMachineRegions(c)
	policies := slices.Sorted(maps.Keys(c.Policies))
	for i, t := range c.Targets {
		p := indexPath("targets", i)
		if t.Config != nil {
			d.fieldErrors(d.nodes[p], p, t.Config.Validate())
		}
		if c.Policies[t.Policy] == nil {
			d.errorf(d.at(p+".policy"), p+".policy", "unknown policy %q%s", t.Policy, suggestName(t.Policy, policies))
		}
		if b := t.Backlog; b != nil {
			d.fieldErrors(d.at(p+".backlog"), p+".backlog", b.Validate())
			if b.Type == backlog.TypeJetStream && b.Replicas > 1 && c.NATS.Embedded() {
				d.errorf(d.at(p+".backlog.replicas"), p+".backlog.replicas", "replicas are copies on a NATS cluster: set nats.url, or leave replicas at 1")
			}
		}
	}
	d.backlogNames(c)
	for _, name := range policies {
		p := "policies." + name
		if d.nodes[p] == nil {
			continue // the built-in default
		}
		if !nameRE().MatchString(name) {
			d.errorf(d.keyNode("policies", name), p, "invalid policy name: use 1 to 64 letters, digits, '.', '-' or '_'")
		}
		d.fieldErrors(d.nodes[p], p, c.Policies[name].Validate())
		if dl := c.Policies[name].DeadLetter; dl != "" && !targets[dl] {
			d.errorf(d.at(p+".dead_letter"), p+".dead_letter", "unknown target %q%s", dl, suggestName(dl, slices.Sorted(maps.Keys(targets))))
		}
	}

	for i, r := range c.Rules {
		p := indexPath("rules", i)
		if d.failed[p] {
			continue
		}
		if r.Pattern.Pattern == nil && !d.failed[p+".pattern"] {
			d.errorf(d.at(p+".pattern"), p, "missing required key \"pattern\"")
		}
		if len(r.Targets) == 0 && !d.failed[p+".targets"] {
			d.errorf(d.at(p+".targets"), p+".targets", "at least one target is required")
		}
		for j, t := range r.Targets {
			if !targets[t] {
				d.errorf(d.nodes[indexPath(p+".targets", j)], indexPath(p+".targets", j), "unknown target %q%s", t, suggestName(t, slices.Sorted(maps.Keys(targets))))
			}
		}
		if n := d.nodes[p+".sources"]; n != nil && len(r.Sources) == 0 {
			d.errorf(n, p+".sources", "an empty list matches no source; leave sources out to match every source")
		}
		for j, s := range r.Sources {
			if !sources[s] {
				d.errorf(d.nodes[indexPath(p+".sources", j)], indexPath(p+".sources", j), "unknown source %q%s", s, suggestName(s, slices.Sorted(maps.Keys(sources))))
			}
		}
		if dup := firstDuplicate(r.Targets); dup >= 0 {
			d.errorf(d.nodes[indexPath(p+".targets", dup)], indexPath(p+".targets", dup), "target %q is listed twice", r.Targets[dup])
		}
	}
}

// backlogNames checks that no two targets share a backlog: each drains
// into its own target only.
func (d *decoder) backlogNames(c *Config) {
	seen := map[string]string{}
	for i, t := range c.Targets {
		if t.Backlog == nil {
			continue
		}
		where, key := t.Backlog.QueueURL, "queue_url"
		if t.Backlog.Type == backlog.TypeJetStream {
			where, key = t.Backlog.Stream, "stream"
			if where == "" {
				where = backlog.StreamFor(t.Name)
			}
		}
		if where == "" {
			continue
		}
		if other, dup := seen[where]; dup {
			p := indexPath("targets", i) + ".backlog." + key
			d.errorf(d.at(p), p, "%s is already the backlog of target %s: each target needs a backlog of its own", where, other)
			continue
		}
		seen[where] = t.Name
	}
}

// at returns the node at path, or its nearest decoded ancestor.
func (d *decoder) at(path string) *yaml.Node {
	for {
		if n := d.nodes[path]; n != nil {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.nodes[""]
		}
		path = path[:i]
	}
}

func (d *decoder) keyNode(mapping, key string) *yaml.Node {
	if n := d.nodes[mapping]; n != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	return d.at(mapping)
}

// names checks the names of one list (present, well-formed, unique) and
// returns the set of them.
func (d *decoder) names(list, what string, n int, name func(int) string) map[string]bool {
	set := map[string]bool{}
	first := map[string]int{}
	for i := range n {
		nm := name(i)
		p := indexPath(list, i) + ".name"
		switch {
		case nm == "":
			// reported as a missing key
		case !nameRE().MatchString(nm):
			d.errorf(d.at(p), p, "invalid %s name %q: use 1 to 64 letters, digits, '.', '-' or '_'", what, nm)
		case set[nm]:
			d.errorf(d.at(p), p, "duplicate %s name %q (first at %s)", what, nm, indexPath(list, first[nm]))
		}
		if _, ok := first[nm]; !ok {
			first[nm] = i
		}
		set[nm] = true
	}
	delete(set, "")
	return set
}

// suggestName lists the defined names, leading with the likely intended one.
func suggestName(name string, defined []string) string {
	if len(defined) == 0 {
		return " (none are defined)"
	}
	list := " (defined: " + strings.Join(defined, ", ") + ")"
	best, bestDist := "", 1<<30
	for _, c := range defined {
		if dist := editDistance(name, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if bestDist <= max(2, len(name)/3) {
		return fmt.Sprintf(" (did you mean %q? %s", best, list[2:])
	}
	return list
}

func firstDuplicate(s []string) int {
	for i := range s {
		if slices.Contains(s[:i], s[i]) {
			return i
		}
	}
	return -1
}

// sharedConsumers reports JetStream sources of one file that would share a
// durable consumer: the second would take over the first's filter subject.
func (d *decoder) sharedConsumers(c *Config) {
	first := map[string]string{}
	for i, s := range c.Sources {
		nc, ok := s.Config.(*natssource.Config)
		if !ok || !nc.JetStream() {
			continue
		}
		durable := nc.DurableFor(s.Name)
		key := nc.Stream + "\x00" + durable
		if other, dup := first[key]; dup {
			p := indexPath("sources", i)
			d.errorf(d.at(p+".durable"), p+".durable", "source %s already consumes stream %s with the durable consumer %q: give each source its own durable", other, nc.Stream, durable)
			continue
		}
		first[key] = s.Name
	}
}
