package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// TestLogsHoldNoSecrets runs a TLS node with an admin token, gossip and HTTPS, logging at
// debug level, through what makes it log most: requests with right and wrong tokens, a plain
// TCP client, a client of another CA and a hostile peer on the cluster port, junk on the gossip
// port, and a shutdown. Its log must not hold the admin token, the gossip secret or the key
// derived from it, or any private key (node.key, ca.key).
func TestLogsHoldNoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	t.Setenv(adminTokenEnv, "")
	dir := t.TempDir()
	cfg := gossipConfig(t, dir, "n1", 1, 1, "")
	cfg.AdminToken = "tok-" + rand.Text()
	cfg.LogLevel = "debug"
	cfg.HTTPTLSCert, cfg.HTTPTLSKey = filepath.Join(cfg.TLSDir, "node.crt"), filepath.Join(cfg.TLSDir, "node.key")
	var logs syncBuffer
	n, err := startNode(cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{t: t, configs: []*serveConfig{cfg}, nodes: []*node{n}}
	t.Cleanup(func() { tc.stop(0) })
	testutil.Eventually(t, "node ready", func() bool { return n.ready() == nil })

	identity := tlstest.CAIn(t, filepath.Join(dir, "certs")).Node("n1")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: identity.Roots, MinVersion: tls.VersionTLS12}}}
	send := func(method, path, authorization, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, "https://"+cfg.AdminAddr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", authorization)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	token := cfg.AdminToken
	if status := send(http.MethodPost, "/projects", "Bearer "+token, `{"id":"p","name":"p"}`); status != http.StatusCreated {
		t.Fatalf("create with the token: %d", status)
	}
	for _, authorization := range []string{"Bearer " + token + "x", "Basic " + token, token, "Bearer " + strings.ToUpper(token)} {
		if status := send(http.MethodGet, "/projects", authorization, ""); status != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: %d, want 401", authorization, status)
		}
	}
	send(http.MethodGet, "/projects/"+token+"?token="+token, "Bearer "+token, "")
	send(http.MethodPost, "/projects", "Bearer "+token, `{"id":"`+token+`","name":`)

	// The cluster port: plain TCP, another CA, and a member's certificate with a bad command.
	if conn, err := net.DialTimeout("tcp", cfg.RaftAddr, time.Second); err == nil {
		_, _ = conn.Write([]byte("\x04" + token))
		_ = conn.Close()
	}
	stranger := tlstest.NewCA(t).Node("n1")
	if raw, err := net.DialTimeout("tcp", cfg.RaftAddr, time.Second); err == nil {
		_ = tls.Client(raw, stranger.ClientConfig("n1")).Handshake()
		_ = raw.Close()
	}
	if code, _ := forwardRequest(t, tc.hostilePeer(0), wireKindPropose, 0, 1, []byte("\x01\xff"+token)); code != wireCodeBadRequest {
		t.Fatalf("a command that does not decode: code %d", code)
	}
	valid := fsm.EncodeCommand(&ledger.CreateProject{ProjectID: "q", Name: token})
	forwardRequest(t, tc.hostilePeer(0), wireKindPropose, 0, 2, valid)

	// The gossip port: junk over UDP and TCP, which memberlist cannot decrypt.
	if conn, err := net.Dial("udp", cfg.GossipAddr); err == nil {
		_, _ = conn.Write([]byte("junk " + token))
		_ = conn.Close()
	}
	if conn, err := net.DialTimeout("tcp", cfg.GossipAddr, time.Second); err == nil {
		_, _ = conn.Write([]byte("junk " + token))
		time.Sleep(100 * time.Millisecond) // let memberlist read and log it before the close
		_ = conn.Close()
	}
	tc.stop(0)

	log := logs.String()
	if !strings.Contains(log, `"level":"WARN"`) || !strings.Contains(log, "does not decode") {
		t.Fatalf("the node logged too little for this test to mean anything:\n%s", log)
	}
	secrets := map[string]string{"admin token": token}
	gossipSecret, err := tlsconfig.ReadGossipSecret(filepath.Join(cfg.TLSDir, "gossip.key"))
	if err != nil || len(gossipSecret) == 0 {
		t.Fatalf("gossip secret: %v", err)
	}
	secrets["gossip secret"] = string(gossipSecret)
	gossipKey := identity.GossipKey()
	secrets["gossip key (hex)"] = hex.EncodeToString(gossipKey)
	secrets["gossip key (base64)"] = base64.StdEncoding.EncodeToString(gossipKey)
	for _, keyFile := range []string{filepath.Join(cfg.TLSDir, "node.key"), filepath.Join(dir, "certs", "ca.key")} {
		pem, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(pem, []byte("\n")) {
			if len(line) >= 16 && !bytes.HasPrefix(line, []byte("-----")) {
				secrets[filepath.Base(keyFile)+" line "+string(rune('0'+i))] = string(line)
			}
		}
	}
	for name, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	if strings.Contains(log, "PRIVATE KEY") {
		t.Error("the log holds a PEM private key")
	}
}
