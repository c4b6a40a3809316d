package config

import (
	"os"
	"strings"
	"testing"
)

func TestAdminListen(t *testing.T) {
	t.Parallel()
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"ADMIN_PORT": "9191"}[name]
		return v, ok
	}
	tests := []struct {
		name, yaml string
		want       string
		err        string // a substring of the error, when one is wanted
	}{
		{"no admin block", "version: 1\n", DefaultAdminListen, ""},
		{"admin without listen", "version: 1\nadmin: {pprof: true}\n", DefaultAdminListen, ""},
		{"null admin", "version: 1\nadmin:\n", DefaultAdminListen, ""},
		{"given", "version: 1\nadmin: {listen: 0.0.0.0:9191}\n", "0.0.0.0:9191", ""},
		{"from the environment", "admin:\n  listen: 127.0.0.1:${ADMIN_PORT}\n", "127.0.0.1:9191", ""},
		{"default of an unset variable", "admin: {listen: '${NOPE:-127.0.0.1:7000}'}\n", "127.0.0.1:7000", ""},
		{"none", "admin: {listen: none}\n", "none", ""},
		// The rest is not the question: a config the daemon would reject
		// still says where its admin endpoint is.
		{"the rest invalid", "version: 7\nmax_inflight: 3\nadmin: {listen: 127.0.0.1:9300}\nrules: [{name: r, targets: [nowhere]}]\n", "127.0.0.1:9300", ""},
		{"through an alias", "x: &a {listen: 127.0.0.1:9400}\nadmin: *a\n", "127.0.0.1:9400", ""},
		{"not host:port", "version: 1\nadmin:\n  listen: 9090\n", "", "f.yaml:3:11: admin.listen: want host:port"},
		{"unset variable", "admin: {listen: '${NOPE}'}\n", "", "f.yaml:1:17: admin.listen: environment variable NOPE is not set"},
		{"admin not a mapping", "admin: 127.0.0.1:9090\n", "", "f.yaml:1:8: admin: expected a mapping"},
		{"not a mapping at all", "- admin: {listen: 127.0.0.1:9300}\n", "", "f.yaml:1:1: expected a mapping of keys"},
		{"broken YAML", "admin: {listen: [\n", "", "f.yaml:"},
		{"empty", "", "", "the file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := AdminListen("f.yaml", []byte(tt.yaml), env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("AdminListen = %q, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("AdminListen = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// AdminListen and Parse agree on what a valid config says, default and all.
func TestAdminListen_AgreesWithParse(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"../../examples/quickstart.yaml", "../../examples/sidecar.yaml", "../../examples/ec2.yaml", "testdata/valid-design.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse(file, data, testEnv)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got, err := AdminListen(file, data, testEnv)
		if err != nil || got != cfg.Admin.Listen {
			t.Errorf("%s: AdminListen = %q, %v; Parse says %q", file, got, err, cfg.Admin.Listen)
		}
	}
	cfg, err := Parse("min.yaml", []byte("version: 1\nsources: [{name: in, type: http}]\ntargets: [{name: out, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [out]}]\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Listen != DefaultAdminListen {
		t.Errorf("Parse's default admin.listen %q, DefaultAdminListen %q", cfg.Admin.Listen, DefaultAdminListen)
	}
}
