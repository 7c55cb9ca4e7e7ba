package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	// CAValidity and NodeValidity are how long made certificates stay valid (CockroachDB's
	// defaults: ten and five years).
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 5 * 365 * 24 * time.Hour
	// backdate covers clocks a little behind the one that made a certificate.
	backdate = time.Hour
	// gossipSecretBytes is the size of the random gossip secret create-ca writes.
	gossipSecretBytes = 32
	// organization names the cluster in every made certificate.
	organization = "GigaLedger"
)

// ErrExists means a file to be written exists and overwrite was not asked for.
var ErrExists = errors.New("exists (give --overwrite to replace it)")

// CreateCA writes a new development CA into dir: ca.crt (0644), ca.key (0600) and a random
// gossip secret gossip.key (0600), which CreateNode copies beside each node's certificate.
func CreateCA(dir string, overwrite bool) error {
	paths := []string{filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), filepath.Join(dir, GossipKeyFile)}
	if err := refuseExisting(paths, overwrite); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{organization}, CommonName: "GigaLedger cluster CA"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode CA key: %w", err)
	}
	secret := make([]byte, gossipSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("generate gossip secret: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The key first: a directory never holds a CA certificate without its key.
	if err := writeFile(paths[1], pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, overwrite); err != nil {
		return err
	}
	if err := writeFile(paths[2], []byte(hex.EncodeToString(secret)+"\n"), 0o600, overwrite); err != nil {
		return err
	}
	return writeFile(paths[0], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, overwrite)
}

// NodeRequest describes a node certificate to make.
type NodeRequest struct {
	// CADir holds ca.crt and ca.key (and gossip.key, copied when present).
	CADir string
	// OutDir receives ca.crt, node.crt, node.key (0600) and gossip.key: a --tls-dir.
	OutDir string
	// NodeID is the node the certificate names (see the package comment).
	NodeID string
	// Hosts become DNS or IP SANs: the names clients reach the node by.
	Hosts []string
	// Overwrite replaces existing node files.
	Overwrite bool
}

// CreateNode writes a node certificate and key signed by the CA in req.CADir, with a copy of
// the CA certificate and the gossip secret, into req.OutDir.
func CreateNode(req NodeRequest) error {
	if err := ValidateNodeID(req.NodeID); err != nil {
		return err
	}
	caPEM, err := readFile(filepath.Join(req.CADir, CACertFile))
	if err != nil {
		return fmt.Errorf("read the CA (run `gigaledger cert create-ca` first): %w", err)
	}
	ca, err := parseCertificatePEM(caPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", CACertFile, err)
	}
	caKeyPEM, err := readFile(filepath.Join(req.CADir, CAKeyFile))
	if err != nil {
		return fmt.Errorf("read the CA key: %w", err)
	}
	caKey, err := parseKeyPEM(caKeyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", CAKeyFile, err)
	}
	var dnsNames []string
	var ips []net.IP
	for _, host := range req.Hosts {
		host = strings.TrimSpace(host)
		if host == "" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, host)
		}
	}
	paths := []string{filepath.Join(req.OutDir, NodeCertFile), filepath.Join(req.OutDir, NodeKeyFile)}
	if err := refuseExisting(paths, req.Overwrite); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate node key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	notAfter := now.Add(NodeValidity)
	if ca.NotAfter.Before(notAfter) {
		notAfter = ca.NotAfter
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{organization}, CommonName: req.NodeID},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		URIs:         []*url.URL{NodeURI(req.NodeID)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sign node certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode node key: %w", err)
	}
	if err := os.MkdirAll(req.OutDir, 0o700); err != nil {
		return err
	}
	if err := writeFile(paths[1], pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, req.Overwrite); err != nil {
		return err
	}
	if err := writeFile(paths[0], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, req.Overwrite); err != nil {
		return err
	}
	// The CA certificate and gossip secret are the cluster's, the same in every node folder:
	// copied over whatever an earlier run left.
	if err := writeFile(filepath.Join(req.OutDir, CACertFile), caPEM, 0o644, true); err != nil {
		return err
	}
	secret, err := readFile(filepath.Join(req.CADir, GossipKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(req.OutDir, GossipKeyFile), secret, 0o600, true)
}

func refuseExisting(paths []string, overwrite bool) error {
	if overwrite {
		return nil
	}
	for _, path := range paths {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s %w", path, ErrExists)
		}
	}
	return nil
}

// writeFile writes data with perm; without overwrite it fails when the file exists (O_EXCL),
// so a race with another writer never replaces a key.
func writeFile(path string, data []byte, perm os.FileMode, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s %w", path, ErrExists)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil { // an overwritten file keeps no looser mode
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return serial, nil
}
