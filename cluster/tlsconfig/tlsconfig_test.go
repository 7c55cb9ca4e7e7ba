package tlsconfig_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
)

func TestCreateCAAndNode(t *testing.T) {
	dir := t.TempDir()
	if err := tlsconfig.CreateCA(dir, false); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "n1")
	req := tlsconfig.NodeRequest{CADir: dir, OutDir: out, NodeID: "n1", Hosts: []string{"127.0.0.1", "node1.example"}}
	if err := tlsconfig.CreateNode(req); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tlsconfig.CAKeyFile, tlsconfig.GossipKeyFile, filepath.Join("n1", tlsconfig.NodeKeyFile), filepath.Join("n1", tlsconfig.GossipKeyFile)} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", name, err, info.Mode().Perm())
		}
	}
	node, err := tlsconfig.LoadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	leaf := node.Certificate.Leaf
	if node.ID != "n1" || leaf.Subject.CommonName != "n1" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "gigaledger://node/n1" {
		t.Fatalf("identity: id %q, CN %q, URIs %v", node.ID, leaf.Subject.CommonName, leaf.URIs)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal([]byte{127, 0, 0, 1}) || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "node1.example" {
		t.Fatalf("hosts: %v %v", leaf.IPAddresses, leaf.DNSNames)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("key type %T", leaf.PublicKey)
	}
	if !node.HasGossipSecret() {
		t.Fatal("gossip.key was not copied beside the node certificate")
	}

	// Nothing is overwritten without asking.
	if err := tlsconfig.CreateCA(dir, false); !errors.Is(err, tlsconfig.ErrExists) {
		t.Fatalf("create-ca over an existing CA: %v", err)
	}
	if err := tlsconfig.CreateNode(req); !errors.Is(err, tlsconfig.ErrExists) {
		t.Fatalf("create-node over an existing node: %v", err)
	}
	req.Overwrite = true
	if err := tlsconfig.CreateNode(req); err != nil {
		t.Fatalf("create-node --overwrite: %v", err)
	}
	if err := tlsconfig.CreateNode(tlsconfig.NodeRequest{CADir: dir, OutDir: t.TempDir(), NodeID: "a/b"}); err == nil {
		t.Fatal("a node ID with a slash was accepted")
	}
}

func TestGossipKey(t *testing.T) {
	ca := tlstest.NewCA(t)
	a, b := ca.Node("n1"), ca.Node("n2")
	if len(a.GossipKey()) != 32 || !bytes.Equal(a.GossipKey(), b.GossipKey()) {
		t.Fatal("members of one cluster derive different gossip keys")
	}
	other := tlstest.NewCA(t).Node("n1")
	if bytes.Equal(a.GossipKey(), other.GossipKey()) {
		t.Fatal("two clusters derive the same gossip key")
	}
	withoutSecret := *a
	withoutSecret.GossipSecret = nil
	if bytes.Equal(a.GossipKey(), withoutSecret.GossipKey()) {
		t.Fatal("the gossip secret does not change the key")
	}
}

// TestNodeIDOf: a certificate names a node only when its CommonName and its one node URI agree.
func TestNodeIDOf(t *testing.T) {
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		name string
		cn   string
		uris []*url.URL
		want string
	}{
		{"both agree", "n1", []*url.URL{uri("gigaledger://node/n1")}, "n1"},
		{"common name only", "n1", nil, ""},
		{"disagree", "n2", []*url.URL{uri("gigaledger://node/n1")}, ""},
		{"two node URIs", "n1", []*url.URL{uri("gigaledger://node/n1"), uri("gigaledger://node/n2")}, ""},
		{"other scheme", "n1", []*url.URL{uri("spiffe://node/n1")}, ""},
		{"bad ID", "a b", []*url.URL{uri("gigaledger://node/a%20b")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := &x509.Certificate{Subject: pkix.Name{CommonName: tc.cn}, URIs: tc.uris}
			got, err := tlsconfig.NodeIDOf(cert)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestLoadRefusesACertificateOfAnotherCA: node.crt must chain to ca.crt.
func TestLoadRefusesACertificateOfAnotherCA(t *testing.T) {
	mine, theirs := tlstest.NewCA(t), tlstest.NewCA(t)
	files := tlsconfig.DirFiles(theirs.NodeDir("n1"))
	files.CA = filepath.Join(mine.Dir, tlsconfig.CACertFile)
	if _, err := tlsconfig.Load(files); err == nil {
		t.Fatal("loaded a node certificate of another CA")
	}
}
