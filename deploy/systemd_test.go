package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unit is a systemd unit file: section → directive → values, in order (a
// directive may be given more than once).
type unit map[string]map[string][]string

// parseUnit reads the unit file syntax systemd.syntax(7) describes:
// [Section] headers, Key=Value lines, # and ; comments, and lines
// continued with a final backslash.
func parseUnit(data []byte) (unit, error) {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	n, pending := 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSpace(strings.TrimSuffix(line, `\`)) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: malformed section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if _, dup := u[section]; dup {
				return nil, fmt.Errorf("line %d: section [%s] twice", n, section)
			}
			u[section] = map[string][]string{}
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: directive before any section", n)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: not Key=Value: %q", n, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	if pending != "" {
		return nil, fmt.Errorf("the file ends in a continued line")
	}
	return u, sc.Err()
}

// one returns a directive's last value (what systemd uses for most), and
// whether it is set.
func (u unit) one(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// parseSystemdTime reads a systemd time span such as "45s", "1min 30s" or
// a bare number of seconds.
func parseSystemdTime(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	s = strings.NewReplacer("min", "m", " ", "").Replace(s)
	return time.ParseDuration(s)
}

// knownDirectives are the directives the unit may use, so a misspelt one
// (which systemd only warns about, and ignores) fails the test.
var knownDirectives = map[string][]string{
	"Unit": {"Description", "Documentation", "Wants", "After", "Requires", "StartLimitIntervalSec", "StartLimitBurst"},
	"Service": {
		"Type", "ExecStartPre", "ExecStart", "ExecReload", "EnvironmentFile", "Environment", "Restart", "RestartSec",
		"KillMode", "TimeoutStopSec", "LimitNOFILE", "DynamicUser", "User", "Group", "StateDirectory",
		"StateDirectoryMode", "ConfigurationDirectory", "WorkingDirectory", "UMask", "NoNewPrivileges",
		"CapabilityBoundingSet", "AmbientCapabilities", "RestrictSUIDSGID", "ProtectSystem", "ProtectHome",
		"PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc", "RestrictAddressFamilies",
		"RestrictNamespaces", "RestrictRealtime", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC",
		"SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
	},
	"Install": {"WantedBy"},
}

func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	u, err := parseUnit(readRepoFile(t, systemdUnit))
	if err != nil {
		t.Fatalf("%s: %v", systemdUnit, err)
	}
	cfg := loadConfig(t, ec2Config)

	for section, keys := range u {
		known, ok := knownDirectives[section]
		if !ok {
			t.Errorf("unknown section [%s]", section)
		}
		for k := range keys {
			if !slices.Contains(known, k) {
				t.Errorf("[%s] %s: not a directive this unit is expected to use (misspelt?)", section, k)
			}
		}
	}

	const conf = "/etc/switchyard/switchyard.yaml"
	required := []struct{ key, want string }{
		{"Type", "simple"}, // switchyard does not implement sd_notify
		{"ExecStart", "/usr/local/bin/switchyard run -c " + conf},
		// Exits 1 when the daemon rejects the new config, so that
		// systemctl reload fails; kill -HUP succeeds either way.
		{"ExecReload", "/usr/local/bin/switchyard reload -c " + conf},
		{"Restart", "on-failure"},
		{"DynamicUser", "yes"},
		{"StateDirectory", "switchyard"},
		{"ConfigurationDirectory", "switchyard"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"RestrictNamespaces", "yes"},
		{"SystemCallArchitectures", "native"},
	}
	for _, r := range required {
		got, ok := u.one("Service", r.key)
		if !ok || got != r.want {
			t.Errorf("[Service] %s=%q (set: %v), want %q", r.key, got, ok, r.want)
		}
	}
	if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q: want @system-service", u["Service"]["SystemCallFilter"])
	}
	fams, _ := u.one("Service", "RestrictAddressFamilies")
	for _, f := range strings.Fields(fams) {
		if !slices.Contains([]string{"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}, f) {
			t.Errorf("RestrictAddressFamilies allows %s", f)
		}
	}
	if !strings.Contains(fams, "AF_INET") {
		t.Errorf("RestrictAddressFamilies=%q: switchyard needs IP", fams)
	}
	if v, _ := u.one("Service", "RestartSec"); v == "" {
		t.Error("no RestartSec: a failing start would be retried at once")
	}
	if v, _ := u.one("Service", "LimitNOFILE"); func() bool { n, err := strconv.Atoi(v); return err != nil || n < 65536 }() {
		t.Errorf("LimitNOFILE=%q: want at least 65536", v)
	}
	if v, _ := u.one("Service", "User"); v == "root" || v == "0" {
		t.Error("runs as root")
	}

	// systemd must wait out shutdown_grace, with the margin, before SIGKILL.
	v, _ := u.one("Service", "TimeoutStopSec")
	stop, err := parseSystemdTime(v)
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", v, err)
	}
	checkStopTimeout(t, "TimeoutStopSec", stop, cfg.ShutdownGrace)

	// The embedded NATS store lives in the StateDirectory, the one place
	// ProtectSystem=strict leaves writable.
	if cfg.NATS.URL == "" {
		sd, _ := u.one("Service", "StateDirectory")
		if dir := path.Clean(cfg.NATS.StoreDir); !strings.HasPrefix(dir, "/var/lib/"+sd+"/") {
			t.Errorf("%s: nats.store_dir %s is not under the unit's StateDirectory /var/lib/%s", ec2Config, dir, sd)
		}
	}
	// ExecReload asks the admin endpoint.
	if cfg.Admin.Listen == "none" {
		t.Errorf("%s: admin.listen is none: ExecReload has nothing to ask", ec2Config)
	}
	if !strings.Contains(string(readRepoFile(t, ec2Config)), "/etc/switchyard/switchyard.yaml") {
		t.Errorf("%s does not say it is installed as %s", ec2Config, conf)
	}
	if w, _ := u.one("Install", "WantedBy"); w != "multi-user.target" {
		t.Errorf("WantedBy=%q", w)
	}
}

func TestParseUnit_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"directive before section", "Type=simple\n"},
		{"not key=value", "[Service]\nType simple\n"},
		{"bad header", "[Service\n"},
		{"section twice", "[Service]\n[Service]\n"},
		{"dangling continuation", "[Service]\nExecStart=/bin/true \\\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := parseUnit([]byte(tt.in)); err == nil {
				t.Errorf("parseUnit(%q): no error", tt.in)
			}
		})
	}
	u, err := parseUnit([]byte("[Service]\n# c\nExecStart=/bin/a \\\n  b\nSystemCallFilter=x\nSystemCallFilter=~y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := u.one("Service", "ExecStart"); v != "/bin/a b" {
		t.Errorf("continued ExecStart = %q", v)
	}
	if got := u["Service"]["SystemCallFilter"]; !slices.Equal(got, []string{"x", "~y"}) {
		t.Errorf("repeated directive = %q", got)
	}
}
