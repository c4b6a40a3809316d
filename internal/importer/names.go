package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// maxName is the longest name switchyard takes for a source, target,
// policy or rule.
const maxName = 64

// configName makes a name of switchyard's alphabet (letters, digits, '.',
// '-', '_'; 1 to 64) of s: other characters become '-', and a name too
// long keeps its start and ends with a hash of the whole, so two long
// names stay apart.
func configName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := b.String()
	if out == "" {
		out = "unnamed"
	}
	if len(out) > maxName {
		sum := sha256.Sum256([]byte(s))
		out = out[:maxName-9] + "-" + hex.EncodeToString(sum[:4])
	}
	return out
}

// namer hands out names unique within one list (targets, rules, policies).
type namer map[string]bool

// name returns the first of the candidates (made valid by configName)
// that is free, else the first with -2, -3... appended, and takes it.
func (n namer) name(candidates ...string) string {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if name := configName(c); !n[name] {
			n[name] = true
			return name
		}
	}
	base := configName(candidates[0])
	for i := 2; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		name := base
		if len(name)+len(suffix) > maxName {
			name = name[:maxName-len(suffix)]
		}
		name += suffix
		if !n[name] {
			n[name] = true
			return name
		}
	}
}
