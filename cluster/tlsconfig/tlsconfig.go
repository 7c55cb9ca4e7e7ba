// Package tlsconfig owns the cluster's node identities: making a development CA and node
// certificates (what `gigaledger cert` writes), loading them, and building the mutual-TLS
// configurations of the node-to-node port and the memberlist encryption key.
//
// Identity scheme. A node certificate names exactly one node ID, twice: as the Subject
// CommonName and as a URI SAN gigaledger://node/<id>. Both must be present and agree, so a
// certificate made for another purpose by the same CA (a CommonName that happens to match, a
// URI SAN for something else) never passes as a node. DNS and IP SANs name the hosts the node
// is reached at; they are for HTTP clients, not for node-to-node checks: a peer is verified by
// chain (the cluster CA) and node ID, which is what Raft configurations and membership name.
// The CA is the authority on membership: any node certificate it signed is a member.
//
// It must never log or return key material.
package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// File names inside a TLS directory (--tls-dir) and a CA directory.
const (
	CACertFile    = "ca.crt"
	CAKeyFile     = "ca.key"
	NodeCertFile  = "node.crt"
	NodeKeyFile   = "node.key"
	GossipKeyFile = "gossip.key"
)

const (
	// URIScheme and uriNodeHost make a node's URI SAN: gigaledger://node/<id>.
	URIScheme   = "gigaledger"
	uriNodeHost = "node"
	// NodeIDMaxBytes bounds a node ID (the cluster's gossiped metadata has the same limit).
	NodeIDMaxBytes = 100
	// GossipKeyBytes is the memberlist key size: AES-256.
	GossipKeyBytes = 32
	// gossipKeyInfo separates the gossip key from any other key derived from the same secret.
	gossipKeyInfo = "gigaledger memberlist key v1"
	// gossipSecretMinBytes is the least secret a gossip.key file may hold.
	gossipSecretMinBytes = 16
	// fileMaxBytes bounds any certificate, key or secret file read.
	fileMaxBytes = 1 << 20
)

var (
	// ErrNoNodeID means a certificate does not name a node in the scheme above.
	ErrNoNodeID = errors.New("certificate names no node ID")
	// ErrWrongNode means a peer's certificate names a node other than the one expected.
	ErrWrongNode = errors.New("certificate names another node")
)

// ValidateNodeID accepts IDs of 1 to NodeIDMaxBytes bytes of ASCII letters, digits, '.', '_'
// and '-': safe in a URI, a file name and a log line.
func ValidateNodeID(id string) error {
	if id == "" || len(id) > NodeIDMaxBytes {
		return fmt.Errorf("node ID %q: want 1 to %d bytes", id, NodeIDMaxBytes)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("node ID %q: only letters, digits, '.', '_' and '-' are allowed", id)
		}
	}
	if id == "." || id == ".." {
		return fmt.Errorf("node ID %q is not allowed", id)
	}
	return nil
}

// NodeURI is the URI SAN that names nodeID.
func NodeURI(nodeID string) *url.URL {
	return &url.URL{Scheme: URIScheme, Host: uriNodeHost, Path: "/" + nodeID}
}

// NodeIDOf returns the node ID a certificate names: its CommonName, which must equal the one
// gigaledger://node/ URI SAN it carries.
func NodeIDOf(cert *x509.Certificate) (string, error) {
	uriID := ""
	for _, u := range cert.URIs {
		if u.Scheme != URIScheme || u.Host != uriNodeHost {
			continue
		}
		if uriID != "" {
			return "", fmt.Errorf("%w: more than one node URI", ErrNoNodeID)
		}
		uriID = u.Path[min(1, len(u.Path)):]
		if uriID == "" {
			return "", fmt.Errorf("%w: empty node URI", ErrNoNodeID)
		}
	}
	if uriID == "" {
		return "", fmt.Errorf("%w: no %s://%s/ URI", ErrNoNodeID, URIScheme, uriNodeHost)
	}
	if cert.Subject.CommonName != uriID {
		return "", fmt.Errorf("%w: common name %q differs from URI %q", ErrNoNodeID, cert.Subject.CommonName, uriID)
	}
	if err := ValidateNodeID(uriID); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoNodeID, err)
	}
	return uriID, nil
}

// Files names the three PEM files of a node.
type Files struct {
	CA, Cert, Key string
}

// DirFiles are the files of a TLS directory: ca.crt, node.crt, node.key.
func DirFiles(dir string) Files {
	return Files{CA: filepath.Join(dir, CACertFile), Cert: filepath.Join(dir, NodeCertFile), Key: filepath.Join(dir, NodeKeyFile)}
}

// Node is a loaded node identity: the cluster CA and this node's certificate and key.
// Immutable once loaded; safe for concurrent use.
type Node struct {
	// ID is the node ID the certificate names.
	ID string
	// CA is the cluster CA certificate; Roots holds it alone.
	CA    *x509.Certificate
	Roots *x509.CertPool
	// Certificate is this node's certificate chain and key for both TLS sides.
	Certificate tls.Certificate
	// GossipSecret, when set, is mixed into the gossip key (see GossipKey). Not logged.
	GossipSecret []byte
}

// Load reads and checks a node's files: the certificate must chain to the CA, be valid now,
// be usable as TLS server and client, and name a node ID.
func Load(files Files) (*Node, error) {
	caPEM, err := readFile(files.CA)
	if err != nil {
		return nil, err
	}
	ca, err := parseCertificatePEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", files.CA, err)
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", files.CA)
	}
	certPEM, err := readFile(files.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(files.Key)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", files.Cert, files.Key, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	n := &Node{CA: ca, Roots: roots, Certificate: pair}
	leaf := pair.Leaf
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if n.ID, err = n.verify(leaf, pair.Certificate[1:], usage); err != nil {
			return nil, fmt.Errorf("%s: %w", files.Cert, err)
		}
	}
	return n, nil
}

// LoadDir loads DirFiles(dir) and, when present, dir/gossip.key.
func LoadDir(dir string) (*Node, error) {
	n, err := Load(DirFiles(dir))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, GossipKeyFile)
	if _, statErr := os.Stat(path); statErr == nil {
		if n.GossipSecret, err = ReadGossipSecret(path); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ReadGossipSecret reads a gossip secret file (at least 16 bytes; surrounding whitespace is
// ignored, so a hex or base64 line works as well as raw bytes).
func ReadGossipSecret(path string) ([]byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	secret := trimSpace(data)
	if len(secret) < gossipSecretMinBytes {
		return nil, fmt.Errorf("%s: a gossip secret needs at least %d bytes", path, gossipSecretMinBytes)
	}
	return secret, nil
}

func trimSpace(b []byte) []byte {
	start, end := 0, len(b)
	for start < end && (b[start] == ' ' || b[start] == '\n' || b[start] == '\r' || b[start] == '\t') {
		start++
	}
	for end > start && (b[end-1] == ' ' || b[end-1] == '\n' || b[end-1] == '\r' || b[end-1] == '\t') {
		end--
	}
	return b[start:end]
}

// verify checks cert against the cluster CA for usage and returns the node ID it names.
func (n *Node) verify(cert *x509.Certificate, intermediates [][]byte, usage x509.ExtKeyUsage) (string, error) {
	pool := x509.NewCertPool()
	for _, der := range intermediates {
		if c, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: n.Roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("not signed by the cluster CA for this use: %w", err)
	}
	return NodeIDOf(cert)
}

// ServerConfig is the TLS configuration of the node-to-node port: TLS 1.3 only, and every
// client must present a node certificate from the cluster CA.
func (n *Node) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{n.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    n.Roots,
		VerifyConnection: func(state tls.ConnectionState) error {
			if len(state.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			_, err := NodeIDOf(state.PeerCertificates[0])
			return err
		},
	}
}

// ClientConfig is the TLS configuration for dialing a peer's node-to-node port. The server
// must present a node certificate from the cluster CA; when expectedID is not empty it must
// name that node. Host names are not checked: peers are addressed by node ID (see the package
// comment), and the chain and ID checks below replace crypto/tls's host name check.
func (n *Node) ClientConfig(expectedID string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{n.Certificate},
		RootCAs:      n.Roots,
		// The default verification would demand the dialed host in the SANs; VerifyConnection
		// verifies the chain itself, then the node ID.
		InsecureSkipVerify: true,
		VerifyConnection: func(state tls.ConnectionState) error {
			if len(state.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			var intermediates [][]byte
			for _, c := range state.PeerCertificates[1:] {
				intermediates = append(intermediates, c.Raw)
			}
			id, err := n.verify(state.PeerCertificates[0], intermediates, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if expectedID != "" && id != expectedID {
				return fmt.Errorf("%w: dialed %s, certificate names %s", ErrWrongNode, expectedID, id)
			}
			return nil
		},
	}
}

// PeerNodeID is the node ID of the verified peer of a completed handshake.
func PeerNodeID(state tls.ConnectionState) (string, error) {
	if !state.HandshakeComplete || len(state.PeerCertificates) == 0 {
		return "", errors.New("no verified peer certificate")
	}
	return NodeIDOf(state.PeerCertificates[0])
}

// GossipKey is the AES-256 key of memberlist: HKDF-SHA256 over the gossip secret (when one is
// configured), salted with the SHA-256 of the CA certificate, so each CA gets its own key.
// Without a secret the CA certificate alone keys it: gossip is then encrypted and kept apart
// from other clusters, but anyone holding the (not secret) CA certificate could derive the
// key; HasGossipSecret tells the caller to warn.
func (n *Node) GossipKey() []byte {
	salt := sha256.Sum256(n.CA.Raw)
	secret := n.GossipSecret
	if len(secret) == 0 {
		secret = n.CA.Raw
	}
	key, err := hkdf.Key(sha256.New, secret, salt[:], gossipKeyInfo, GossipKeyBytes)
	if err != nil {
		panic(fmt.Sprintf("tlsconfig: derive gossip key: %v", err)) // only for impossible lengths
	}
	return key
}

// HasGossipSecret reports whether a gossip secret is mixed into GossipKey.
func (n *Node) HasGossipSecret() bool {
	return len(n.GossipSecret) > 0
}

// ExpiresWithin reports whether this node's certificate expires before now+d.
func (n *Node) ExpiresWithin(now time.Time, d time.Duration) bool {
	return n.Certificate.Leaf.NotAfter.Before(now.Add(d))
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, fileMaxBytes+1)
	total := 0
	for total < len(data) {
		read, err := f.Read(data[total:])
		total += read
		if err != nil {
			break
		}
	}
	if total > fileMaxBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, fileMaxBytes)
	}
	return data[:total], nil
}

func parseCertificatePEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if ec, ecErr := x509.ParseECPrivateKey(block.Bytes); ecErr == nil {
			return ec, nil
		}
		return nil, errors.New("key is not PKCS#8 or EC PEM")
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("CA key is not ECDSA")
	}
	return ec, nil
}
