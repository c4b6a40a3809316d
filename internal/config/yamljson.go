package config

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// jsonNumber is the JSON number grammar; YAML numbers written this way keep
// their spelling, others (0x1f, +5, .5) are converted.
var jsonNumber = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`) })

// appendJSON appends the JSON form of a YAML node (an event pattern written
// as YAML). It reports what JSON cannot hold and returns false.
func (d *decoder) appendJSON(dst []byte, n *yaml.Node, path string) ([]byte, bool) {
	if d.overBudget(n, path) {
		return dst, false
	}
	n = deref(n)
	d.nodes[path] = n
	switch n.Kind {
	case yaml.MappingNode:
		dst = append(dst, '{')
		ok := true
		first := true
		d.eachKey(n, path, func(key string, _, v *yaml.Node) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, key)
			dst = append(dst, ':')
			var good bool
			dst, good = d.appendJSON(dst, v, joinPath(path, key))
			ok = ok && good
		})
		return append(dst, '}'), ok && len(n.Content)%2 == 0
	case yaml.SequenceNode:
		dst = append(dst, '[')
		ok := true
		for i, c := range n.Content {
			if i > 0 {
				dst = append(dst, ',')
			}
			var good bool
			dst, good = d.appendJSON(dst, c, indexPath(path, i))
			ok = ok && good
		}
		return append(dst, ']'), ok
	}
	switch n.ShortTag() {
	case "!!null":
		return append(dst, "null"...), true
	case "!!bool":
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		return strconv.AppendBool(dst, b), true
	case "!!int", "!!float":
		if jsonNumber().MatchString(n.Value) {
			return append(dst, n.Value...), true
		}
		s := strings.ReplaceAll(n.Value, "_", "")
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return strconv.AppendInt(dst, i, 10), true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorf(n, path, "%s is not a number JSON can hold", d.text(n))
			return dst, false
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), true
	}
	return appendJSONString(dst, n.Value), true
}

// appendJSONString quotes s for JSON (strconv.Quote's escapes are Go's, not
// JSON's).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// parseDuration parses a Go duration (500ms, 30s, 5m, 1h30m) that is not
// negative. Its errors never repeat the input, which may be a secret.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		if _, numErr := strconv.ParseFloat(strings.TrimSpace(s), 64); numErr == nil {
			return 0, errors.New("a unit is required: ms, s, m or h (such as 30s)")
		}
		return 0, errors.New("want a number with a unit, such as 500ms, 30s, 5m or 1h30m")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}
