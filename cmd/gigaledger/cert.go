package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
)

const certUsage = `usage:
  gigaledger cert create-ca --dir D [--overwrite | --keep-existing]
      writes D/ca.crt, D/ca.key (0600) and D/gossip.key (0600): a development cluster CA
  gigaledger cert create-node --dir D --node-id ID --hosts H1,H2 [--ca-dir C] [--out O] [--overwrite | --keep-existing]
      writes O (default D/ID) with node.crt and node.key signed by the CA in C (default D),
      plus copies of ca.crt and gossip.key: start the node with --tls-dir O

A node certificate names its node ID as the Subject CommonName and as the URI SAN
gigaledger://node/ID; --hosts become DNS and IP SANs. Keys are ECDSA P-256. Existing keys are
never replaced without --overwrite; --keep-existing leaves them and exits 0 (init containers).
`

// certCommand is `gigaledger cert`: it parses flags and calls cluster/tlsconfig.
func certCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "create-ca":
		err = certCreateCA(args[1:], stdout, stderr)
	case "create-node":
		err = certCreateNode(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, certUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "gigaledger cert: unknown command %q\n\n%s", args[0], certUsage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger cert %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func certCreateCA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cert create-ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for ca.crt, ca.key and gossip.key")
	overwrite := fs.Bool("overwrite", false, "replace an existing CA (every node certificate must then be made again)")
	keep := fs.Bool("keep-existing", false, "when the CA exists, leave it and exit 0")
	if err := parseCertFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	if kept(stdout, *keep, *overwrite, filepath.Join(*dir, tlsconfig.CACertFile)) {
		return nil
	}
	if err := tlsconfig.CreateCA(*dir, *overwrite); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s, %s and %s in %s\n", tlsconfig.CACertFile, tlsconfig.CAKeyFile, tlsconfig.GossipKeyFile, *dir)
	return nil
}

func certCreateNode(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cert create-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "certificates directory: the CA (unless --ca-dir) and, by default, the output parent")
	caDir := fs.String("ca-dir", "", "directory with ca.crt and ca.key (default --dir)")
	out := fs.String("out", "", "output directory, what --tls-dir takes (default --dir/<node-id>)")
	nodeID := fs.String("node-id", "", "the node ID the certificate names (the node's --node-id)")
	hosts := fs.String("hosts", "", "comma-separated host names and IP addresses the node is reached at")
	overwrite := fs.Bool("overwrite", false, "replace an existing node certificate and key")
	keep := fs.Bool("keep-existing", false, "when the node certificate exists, leave it and exit 0")
	if err := parseCertFlags(fs, args); err != nil {
		return err
	}
	if *keep && *overwrite {
		return errors.New("--keep-existing and --overwrite contradict each other")
	}
	if *dir == "" || *nodeID == "" {
		return errors.New("--dir and --node-id are required")
	}
	if *caDir == "" {
		*caDir = *dir
	}
	if *out == "" {
		*out = filepath.Join(*dir, *nodeID)
	}
	if kept(stdout, *keep, *overwrite, filepath.Join(*out, tlsconfig.NodeCertFile)) {
		return nil
	}
	var hostList []string
	for _, host := range strings.Split(*hosts, ",") {
		if host = strings.TrimSpace(host); host != "" {
			hostList = append(hostList, host)
		}
	}
	err := tlsconfig.CreateNode(tlsconfig.NodeRequest{CADir: *caDir, OutDir: *out, NodeID: *nodeID, Hosts: hostList, Overwrite: *overwrite})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s for node %s in %s (start it with --tls-dir %s)\n", tlsconfig.NodeCertFile, *nodeID, *out, *out)
	return nil
}

// kept reports whether --keep-existing applies: path exists and is left as it is.
func kept(stdout io.Writer, keep, overwrite bool, path string) bool {
	if !keep || overwrite {
		return false
	}
	if _, err := os.Stat(path); err != nil {
		return false
	}
	fmt.Fprintf(stdout, "kept the existing %s\n", path)
	return true
}

func parseCertFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
