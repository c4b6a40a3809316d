package config

import (
	"net"
	"os"

	"go.yaml.in/yaml/v3"
)

// DefaultAdminListen is admin.listen's default.
const DefaultAdminListen = "127.0.0.1:9090"

// AdminListen reads admin.listen alone from data, the config file named
// file: ${NAME}s in it expanded with lookup (nil: the process environment),
// DefaultAdminListen when it is not given, or "none". The rest of the file
// is neither decoded nor validated, so the commands that talk to a running
// daemon find it through a config that was edited since into one the
// daemon would reject (which `switchyard reload` is there to report).
// Problems are returned as Errors.
func AdminListen(file string, data []byte, lookup func(string) (string, bool)) (string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	d := &decoder{file: file, raw: map[*yaml.Node]string{}, nodes: map[string]*yaml.Node{}, failed: map[string]bool{}}
	root, err := parseYAML(data)
	if err != nil {
		return "", Errors{d.syntaxError(data, err)}
	}
	if root == nil {
		return "", Errors{{File: file, Msg: "the file is empty (see docs/config.md for its shape)"}}
	}
	if root = deref(root); root.Kind != yaml.MappingNode {
		d.errorf(root, "", "expected a mapping of keys (see docs/config.md for its shape), got %s", d.describe(root))
		return "", d.errs
	}
	admin := mapValue(root, "admin")
	if admin == nil || isNull(deref(admin)) {
		return DefaultAdminListen, nil
	}
	admin = deref(admin)
	if admin.Kind != yaml.MappingNode {
		d.errorf(admin, "admin", "expected a mapping, such as {listen: 127.0.0.1:9090}, got %s", d.describe(admin))
		return "", d.errs
	}
	n := mapValue(admin, "listen")
	if n == nil || isNull(deref(n)) {
		return DefaultAdminListen, nil
	}
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "admin.listen", "want host:port, such as 127.0.0.1:9090, or none")
		return "", d.errs
	}
	d.expandEnv(n, "admin.listen", lookup)
	if len(d.errs) > 0 {
		return "", d.errs
	}
	listen := n.Value
	if listen == "" {
		return DefaultAdminListen, nil
	}
	if _, _, err := net.SplitHostPort(listen); err != nil && listen != "none" {
		d.errorf(n, "admin.listen", "want host:port, such as 127.0.0.1:9090, or none")
		return "", d.errs
	}
	return listen, nil
}
