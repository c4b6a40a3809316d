package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchyard-dev/switchyard/internal/bus"
	"github.com/switchyard-dev/switchyard/internal/fleet"
	"github.com/switchyard-dev/switchyard/internal/ledger"
	"github.com/switchyard-dev/switchyard/internal/natstest"
)

const natsServerConf = "deploy/nats/nats-server.conf"

// The NATS cluster of deploy/nats runs as written: three servers from the
// file (only their addresses, ports and store moved to the test's), with
// TLS on the clients' port and mutual TLS on the routes, form a JetStream
// cluster on which switchyard, connecting as its README says (tls://, the
// switchyard user, nats.tls.ca_file), opens its ledger and joins the fleet
// with three replicas. A wrong password and a client without the CA are
// refused.
func TestNATSServerConf(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca := writeCerts(t, tlsDir)
	const password = "s3cret-for-the-test"
	t.Setenv("SWITCHYARD_NATS_PASSWORD", password)
	text := strings.ReplaceAll(string(readRepoFile(t, natsServerConf)), "/etc/nats/tls/", tlsDir+string(filepath.Separator))

	cluster := natstest.RunCluster(t, 3, func(o *server.Options) {
		name := "nats-" + strings.TrimPrefix(o.ServerName, "n")
		t.Setenv("NATS_SERVER_NAME", name)
		conf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(conf, []byte(strings.ReplaceAll(text, "/data/jetstream", o.StoreDir)), 0o600); err != nil {
			t.Fatal(err)
		}
		loaded, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("%s: %v", natsServerConf, err)
		}
		checkNATSConf(t, loaded, name)
		// The file's addresses are the hosts'; the test's are loopback.
		loaded.Host, loaded.Port = o.Host, o.Port
		loaded.HTTPHost, loaded.HTTPPort = "127.0.0.1", server.RANDOM_PORT
		loaded.Cluster.Host, loaded.Cluster.Port, loaded.Routes = o.Cluster.Host, o.Cluster.Port, o.Routes
		loaded.NoLog, loaded.NoSigs = true, true
		*o = *loaded
	})
	url := strings.ReplaceAll(cluster.URLs(), "nats://", "tls://")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: url, User: "switchyard", Password: password, TLS: bus.TLS{CAFile: ca}}, quietLog)
	if err != nil {
		t.Fatalf("switchyard's connection to the cluster: %v", err)
	}
	defer b.Close(context.Background())
	lcfg := ledger.Config{Replicas: 3}
	lcfg.SetDefaults()
	if _, err := ledger.Open(ctx, b.JetStream(), lcfg); err != nil {
		t.Fatalf("the ledger on the cluster: %v", err)
	}
	s, err := b.JetStream().Stream(ctx, "KV_"+lcfg.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("the ledger's stream: %d replicas configured, cluster %+v; want 3 on three servers", info.Config.Replicas, info.Cluster)
	}
	fcfg := fleet.Config{}
	fcfg.SetDefaults()
	f, err := fleet.Open(ctx, b.JetStream(), fcfg, "test", quietLog, 3)
	if err != nil {
		t.Fatalf("joining the fleet: %v", err)
	}
	defer f.Close(context.Background())
	if err := f.Rate("app", 20).Wait(ctx); err != nil {
		t.Fatalf("a token of a fleet-wide rate: %v", err)
	}

	for _, bad := range []struct {
		what string
		cfg  bus.Config
		want string
	}{
		{"a wrong password", bus.Config{URL: url, User: "switchyard", Password: "wrong", TLS: bus.TLS{CAFile: ca}}, "authorization"},
		{"no CA for the servers' certificate", bus.Config{URL: url, User: "switchyard", Password: password}, "certificate"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		b, err := bus.Open(ctx, bad.cfg, quietLog)
		cancel()
		if err == nil {
			b.Close(context.Background())
			t.Errorf("%s: connected, want it refused", bad.what)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), bad.want) {
			t.Errorf("%s: %v, want an error about %s", bad.what, err, bad.want)
		}
	}
}

// checkNATSConf checks what the file sets that the test then moves: the
// ports a README reader opens, and routes to the three servers.
func checkNATSConf(t *testing.T, o *server.Options, name string) {
	t.Helper()
	if o.ServerName != name {
		t.Errorf("server_name %q, want %q from NATS_SERVER_NAME", o.ServerName, name)
	}
	if o.Port != 4222 || o.Cluster.Port != 6222 || o.HTTPPort != 8222 {
		t.Errorf("ports %d (clients), %d (routes), %d (monitoring); want 4222, 6222, 8222", o.Port, o.Cluster.Port, o.HTTPPort)
	}
	if !o.JetStream || o.TLSConfig == nil || o.Cluster.TLSConfig == nil || o.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("want JetStream, TLS for clients and mutual TLS on routes; jetstream %v, tls %v, routes' tls %v", o.JetStream, o.TLSConfig != nil, o.Cluster.TLSConfig != nil)
	}
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.Host)
	}
	want := []string{"nats-0.switchyard.internal:6222", "nats-1.switchyard.internal:6222", "nats-2.switchyard.internal:6222"}
	if !slices.Equal(routes, want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
}

// writeCerts writes a CA and a certificate it signed for the servers
// (ca.pem, server.pem, server-key.pem) to dir, and returns ca.pem's path.
func writeCerts(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchyard NATS test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats.switchyard.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"*.switchyard.internal", "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: der},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(fmt.Errorf("%s: %w", name, err))
		}
	}
	return filepath.Join(dir, "ca.pem")
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))
