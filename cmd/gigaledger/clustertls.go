package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
)

// certExpiryWarning is how long before its certificate expires a node starts warning.
const certExpiryWarning = 30 * 24 * time.Hour

// tlsEnabled reports whether node-to-node traffic runs mutual TLS.
func (cfg *serveConfig) tlsEnabled() bool {
	return cfg.TLSDir != "" || cfg.TLSCert != ""
}

// validateTLS checks the TLS flags and, without TLS, that every cluster address is loopback
// unless --insecure-cluster says otherwise.
func (cfg *serveConfig) validateTLS(peers []Peer) error {
	files := cfg.TLSCA != "" || cfg.TLSCert != "" || cfg.TLSKey != ""
	if cfg.TLSDir != "" && files {
		return errors.New("give --tls-dir or --tls-ca, --tls-cert and --tls-key, not both")
	}
	if files && (cfg.TLSCA == "" || cfg.TLSCert == "" || cfg.TLSKey == "") {
		return errors.New("--tls-ca, --tls-cert and --tls-key go together")
	}
	if (cfg.HTTPTLSCert == "") != (cfg.HTTPTLSKey == "") {
		return errors.New("--http-tls-cert and --http-tls-key go together")
	}
	if cfg.GossipKeyFile != "" && !cfg.tlsEnabled() {
		return errors.New("--gossip-key needs node-to-node TLS (--tls-dir)")
	}
	if cfg.tlsEnabled() || cfg.InsecureCluster {
		return nil
	}
	for _, named := range cfg.clusterAddresses(peers) {
		if !isLoopback(named.addr) {
			return fmt.Errorf("%s %q is not loopback and node-to-node traffic has no TLS: anyone who reaches it could write to the ledger. "+
				"Give --tls-dir (make certificates with 'gigaledger cert create-ca' and 'gigaledger cert create-node'), "+
				"or --tls-ca, --tls-cert and --tls-key; or, on a network you trust, --insecure-cluster", named.flag, named.addr)
		}
	}
	return nil
}

type namedAddress struct{ flag, addr string }

// clusterAddresses are every address node-to-node traffic uses: the raft and gossip ports,
// the peers and the join seeds.
func (cfg *serveConfig) clusterAddresses(peers []Peer) []namedAddress {
	addresses := []namedAddress{{"--raft-addr", cfg.RaftAddr}}
	if cfg.GossipAddr != "" {
		addresses = append(addresses, namedAddress{"--gossip-addr", cfg.GossipAddr})
	}
	if strings.TrimSpace(cfg.Peers) != "" {
		for _, p := range peers {
			addresses = append(addresses, namedAddress{"--peers " + p.ID, p.Addr})
		}
	}
	for _, seed := range strings.Split(cfg.Join, ",") {
		if seed = strings.TrimSpace(seed); seed != "" {
			addresses = append(addresses, namedAddress{"--join", seed})
		}
	}
	return addresses
}

// loadNodeTLS loads the node's certificate (which must name --node-id) and gossip secret, or
// returns nil without TLS: then it warns when --insecure-cluster opened non-loopback ports.
func loadNodeTLS(cfg *serveConfig, logger *slog.Logger) (*tlsconfig.Node, error) {
	if !cfg.tlsEnabled() {
		if cfg.InsecureCluster {
			logger.Warn("--insecure-cluster: node-to-node traffic (Raft, forwarding, gossip) is neither authenticated nor encrypted; "+
				"anyone who can reach these ports can write to the ledger", "raft_addr", cfg.RaftAddr, "gossip_addr", cfg.GossipAddr)
		}
		return nil, nil
	}
	files := tlsconfig.Files{CA: cfg.TLSCA, Cert: cfg.TLSCert, Key: cfg.TLSKey}
	secretFile := cfg.GossipKeyFile
	if cfg.TLSDir != "" {
		files = tlsconfig.DirFiles(cfg.TLSDir)
		if secretFile == "" {
			secretFile = filepath.Join(cfg.TLSDir, tlsconfig.GossipKeyFile)
		}
	} else if secretFile == "" {
		secretFile = filepath.Join(filepath.Dir(cfg.TLSCert), tlsconfig.GossipKeyFile)
	}
	nodeTLS, err := tlsconfig.Load(files)
	if err != nil {
		return nil, fmt.Errorf("node TLS: %w", err)
	}
	if nodeTLS.ID != cfg.NodeID {
		return nil, fmt.Errorf("node TLS: %s names node %q, but --node-id is %q; make this node's certificate with 'gigaledger cert create-node --node-id %s'",
			files.Cert, nodeTLS.ID, cfg.NodeID, cfg.NodeID)
	}
	if _, statErr := os.Stat(secretFile); statErr == nil || cfg.GossipKeyFile != "" {
		if nodeTLS.GossipSecret, err = tlsconfig.ReadGossipSecret(secretFile); err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
	}
	// A gossip key derived from the CA certificate alone keeps other clusters out, not an
	// attacker holding that public certificate: such a member could claim to lead a shard and
	// be sent its proposals and queries (and answer them falsely). A gossiping node needs the
	// secret.
	if cfg.GossipAddr != "" && !nodeTLS.HasGossipSecret() {
		return nil, fmt.Errorf("gossip key: no %s (give --gossip-key FILE, or put %s beside the certificates, as 'gigaledger cert create-node' does)",
			secretFile, tlsconfig.GossipKeyFile)
	}
	if nodeTLS.ExpiresWithin(time.Now(), certExpiryWarning) {
		logger.Warn("the node certificate expires within 30 days", "not_after", nodeTLS.Certificate.Leaf.NotAfter)
	}
	return nodeTLS, nil
}

// loadHTTPTLS returns the HTTPS configuration of the admin and public listeners; nil without
// --http-tls-cert.
func loadHTTPTLS(cfg *serveConfig) (*tls.Config, error) {
	if cfg.HTTPTLSCert == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cfg.HTTPTLSCert, cfg.HTTPTLSKey)
	if err != nil {
		return nil, fmt.Errorf("--http-tls-cert and --http-tls-key: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}
