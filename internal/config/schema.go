package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
)

// SchemaID is the schema's $id.
const SchemaID = "https://github.com/switchyard-dev/switchyard/docs/switchyard.schema.json"

// Schema returns a JSON Schema (draft 2020-12) of the config file, derived
// from the structs the loader decodes into, so that it accepts what the
// loader's decoding accepts as written in the file:
//   - every value may be null (the loader leaves the default), and every
//     scalar may hold a ${NAME} reference (expanded before decoding, so its
//     type is only known once expanded);
//   - a string key takes any scalar (the loader reads its text);
//   - every mapping refuses unknown keys, as the loader does;
//   - a source's or target's keys depend on its type (if/then on type).
//
// It checks the shape, not what Validate checks (ranges, references
// between names, required keys of a type).
func Schema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root, err := g.object(reflect.TypeFor[Config](), "")
	if err != nil {
		return nil, err
	}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "switchyard config"
	root["required"] = []string{"version", "sources", "targets", "rules"}
	g.defs["env"] = map[string]any{
		"description": "a value from the environment, ${NAME} or ${NAME:-default}",
		"type":        "string",
		"pattern":     `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`,
	}
	root["$defs"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type schemaGen struct {
	defs map[string]any
}

var (
	rateType     = reflect.TypeFor[policy.Rate]()
	bytesType    = reflect.TypeFor[size.Bytes]()
	envelopeType = reflect.TypeFor[router.Envelope]()
	sourceType   = reflect.TypeFor[Source]()
	targetType   = reflect.TypeFor[Target]()
	patternType  = reflect.TypeFor[Pattern]()
)

// nullable lets a value also be null or a ${NAME} reference.
func nullable(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}, map[string]any{"$ref": "#/$defs/env"}}}
}

// value is the schema of a value of type t.
func (g *schemaGen) value(t reflect.Type, path string) (map[string]any, error) {
	switch t {
	case durationType:
		return nullable(map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": `^\s*(([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+|0)\s*$`},
			map[string]any{"const": 0},
		}}), nil
	case rateType:
		return nullable(map[string]any{"type": "string", "pattern": `^\s*[0-9.eE+]+\s*/\s*(s|sec|second|m|min|minute|h|hour|([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)\s*$`}), nil
	case bytesType:
		return nullable(map[string]any{"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": `^\s*[0-9]+\s*(KiB|MiB|GiB|KB|MB|GB|K|M|G|B)?\s*$`},
		}}), nil
	case envelopeType:
		return nullable(map[string]any{"enum": []string{"auto", "eventbridge", "sns", "raw"}}), nil
	case sourceType:
		return g.kinds("source", sourceKinds, []string{"name", "type"})
	case targetType:
		return g.kinds("target", targetKinds, []string{"name", "type", "policy", "backlog"})
	case patternType:
		return map[string]any{"description": "an EventBridge event pattern, as YAML or as a JSON string", "type": []string{"object", "string"}}, nil
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil, fmt.Errorf("config schema: %s: no schema for %s: add it to schemaGen.value", path, t)
	}
	switch t.Kind() {
	case reflect.String:
		return nullable(map[string]any{"type": []string{"string", "number", "boolean"}}), nil
	case reflect.Bool:
		return nullable(map[string]any{"type": "boolean"}), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return nullable(map[string]any{"type": "integer"}), nil
	case reflect.Float64:
		return nullable(map[string]any{"type": "number"}), nil
	case reflect.Slice:
		items, err := g.value(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		return nullable(map[string]any{"type": "array", "items": dropNull(items)}), nil
	case reflect.Map:
		vals, err := g.value(t.Elem(), path+".*")
		if err != nil {
			return nil, err
		}
		return nullable(map[string]any{"type": "object", "additionalProperties": vals}), nil
	case reflect.Pointer:
		return g.value(t.Elem(), path)
	case reflect.Struct:
		o, err := g.object(t, path)
		if err != nil {
			return nil, err
		}
		return nullable(o), nil
	}
	return nil, fmt.Errorf("config schema: %s: cannot describe %s", path, t)
}

// dropNull is s without null: list entries may not be null.
func dropNull(s map[string]any) map[string]any {
	alts, ok := s["anyOf"].([]any)
	if !ok {
		return s
	}
	var keep []any
	for _, a := range alts {
		if m, ok := a.(map[string]any); ok && m["type"] == "null" {
			continue
		}
		keep = append(keep, a)
	}
	return map[string]any{"anyOf": keep}
}

// object is the schema of a struct's keys, refusing others.
func (g *schemaGen) object(t reflect.Type, path string, extra ...string) (map[string]any, error) {
	props := map[string]any{}
	for _, f := range fieldsOf(t) {
		sf := t.FieldByIndex(f.index)
		p := joinPath(path, f.key)
		s, err := g.value(sf.Type, p)
		if err != nil {
			return nil, err
		}
		if d := fieldDoc(t, f.index); d != "" {
			s = withDescription(s, d)
		}
		props[f.key] = s
	}
	for _, k := range extra {
		props[k] = map[string]any{}
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}, nil
}

func withDescription(s map[string]any, d string) map[string]any {
	c := map[string]any{"description": d}
	for k, v := range s {
		c[k] = v
	}
	return c
}

// kinds is the schema of a source or target: name and type, and the keys
// of the type's own Config.
func (g *schemaGen) kinds(what string, kinds map[string]func() Kind, common []string) (map[string]any, error) {
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	})
	var branches []any
	for _, name := range names {
		t := reflect.TypeOf(kinds[name]()).Elem()
		def := what + "." + name
		o, err := g.object(t, what+"s[type="+name+"]")
		if err != nil {
			return nil, err
		}
		props := o["properties"].(map[string]any)
		props["name"] = map[string]any{"description": "the " + what + "'s name, used in rules, logs and metrics", "type": "string", "pattern": `^[A-Za-z0-9._-]{1,64}$`}
		props["type"] = map[string]any{"const": name}
		if slices.Contains(common, "policy") {
			props["policy"] = map[string]any{"description": "the delivery policy (default: default)", "type": "string"}
		}
		if slices.Contains(common, "backlog") {
			b, err := g.object(reflect.TypeFor[backlog.Config](), what+"s[type="+name+"].backlog")
			if err != nil {
				return nil, err
			}
			b["description"] = "where the target's deliveries go while it cannot take them (default: none, they wait in memory)"
			props["backlog"] = nullable(b)
		}
		g.defs[def] = o
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": name}}, "required": []string{"type"}},
			"then": map[string]any{"$ref": "#/$defs/" + def},
		})
	}
	return map[string]any{
		"type":     "object",
		"required": []string{"name", "type"},
		"properties": map[string]any{
			"type": map[string]any{"enum": names},
		},
		"allOf": branches,
	}, nil
}

// fieldDoc is the description of a struct field: its doc comment, from
// the table schema_doc.go holds (go test ./internal/config -update
// regenerates it from the sources).
func fieldDoc(t reflect.Type, index []int) string {
	owner := t
	for _, i := range index[:len(index)-1] {
		owner = owner.Field(i).Type
		if owner.Kind() == reflect.Pointer {
			owner = owner.Elem()
		}
	}
	return fieldDocs()[docKey(owner.PkgPath(), owner.Name(), owner.Field(index[len(index)-1]).Name)]
}

// docKey is how fieldDocs names a field.
func docKey(pkgPath, typeName, field string) string {
	return strings.Join([]string{pkgPath, typeName, field}, ".")
}
