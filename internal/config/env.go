package config

import (
	"errors"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in every scalar value
// below n (keys are left alone); $${ stands for a literal ${. A plain
// scalar that changed is re-typed from its new text, so `${PORT}` can fill
// a number. The text before expansion is kept for messages.
func (d *decoder) expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.expandEnv(c, path, lookup)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expandEnv(c, indexPath(path, i), lookup)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.expandEnv(n.Content[i+1], joinPath(path, n.Content[i].Value), lookup)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		out, err := expand(n.Value, lookup)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if out == n.Value {
			return
		}
		d.raw[n] = n.Value
		n.Value = out
		if n.Style == 0 { // plain and untagged: type it by its new text
			n.Tag = resolveTag(out)
		}
	}
}

var envName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${ is a literal ${
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ (write $${ for a literal ${)")
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if strings.Contains(def, "${") {
			return "", errors.New("a default cannot hold another ${...}, nor a }")
		}
		if !envName().MatchString(name) {
			return "", errors.New("invalid environment variable name in ${" + expr + "}")
		}
		v, ok := lookup(name)
		switch {
		case ok && (v != "" || !hasDef):
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", errors.New("environment variable " + name + " is not set (use ${" + name + ":-default} for a default)")
		}
	}
}

var (
	intRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*|0x[0-9a-fA-F]+|0o[0-7]+)$`) })
	floatRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$`)
	})
)

// resolveTag types a plain scalar the way YAML 1.2's core schema does.
func resolveTag(s string) string {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return "!!null"
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return "!!bool"
	}
	if intRE().MatchString(s) {
		return "!!int"
	}
	if floatRE().MatchString(s) {
		return "!!float"
	}
	return "!!str"
}
