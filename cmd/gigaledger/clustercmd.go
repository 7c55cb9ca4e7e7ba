package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// clusterAnswerBytesMax bounds how much of an admin answer the cluster command reads.
const clusterAnswerBytesMax = 4 << 20

const clusterUsage = `usage: gigaledger cluster COMMAND [flags]

Operate a running cluster through a node's admin API (any node; it forwards to the leaders):

  status                                    GET /cluster: nodes, shards, replicas, leaders
  move-replica --shard K --from A --to B    move one replica of shard K from node A to node B
                                            (a running member: started with --join); waits
                                            until B has caught up and A's replica is removed
  replace-node --old A --new B --new-raft-addr HOST:PORT
                                            move every replica of a dead node A to node B
  balance-leaders                           spread shard leadership: move leadership one shard
                                            at a time from the busiest node to an up-to-date
                                            voter leading two fewer, until even (max-min <= 1)
  balance-replicas                          spread shard replicas onto nodes that joined: move
                                            replicas one at a time (as move-replica) from the
                                            node holding the most to a live node holding two
                                            fewer, until even (max-min <= 1); waits until done

Every command takes --addr (the node's admin address), --token (or env GIGALEDGER_ADMIN_TOKEN),
--ca (HTTPS with this CA) and --timeout. It prints the node's JSON answer; exit 0 when the node
answered 2xx, 1 otherwise, 2 on bad usage. A move or replacement that did not finish is safe to
run again.
`

// clusterCommand is `gigaledger cluster`: the admin routes for cluster operations from the
// command line (and from inside a FROM-scratch container, which has no curl).
func clusterCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, clusterUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	command := args[0]
	fs := flag.NewFlagSet("cluster "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAdminAddr, "the node's admin listen address (host:port)")
	token := fs.String("token", "", "admin bearer token (or env "+adminTokenEnv+")")
	caFile := fs.String("ca", "", "the CA certificate that signed the node's --http-tls-cert: ask over HTTPS")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up waiting for the answer after this long (the operation itself may go on)")
	var method, path string
	// makeBody builds the request body once the flags are parsed (nil: none).
	var makeBody func() map[string]any
	switch command {
	case "status":
		method, path = http.MethodGet, "/cluster"
	case "move-replica":
		shardID := fs.Int("shard", -1, "the shard whose replica moves")
		from := fs.String("from", "", "the node that holds the replica now")
		to := fs.String("to", "", "the node to move it to")
		method, path = http.MethodPost, "/cluster/move-replica"
		makeBody = func() map[string]any { return map[string]any{"shard": *shardID, "fromNodeId": *from, "toNodeId": *to} }
	case "balance-leaders":
		method, path = http.MethodPost, "/cluster/balance-leaders"
		makeBody = func() map[string]any { return map[string]any{} }
	case "balance-replicas":
		method, path = http.MethodPost, "/cluster/balance-replicas"
		makeBody = func() map[string]any { return map[string]any{} }
	case "replace-node":
		old := fs.String("old", "", "the dead node")
		replacement := fs.String("new", "", "the running node that takes its replicas")
		raftAddr := fs.String("new-raft-addr", "", "the new node's --raft-addr")
		method, path = http.MethodPost, "/cluster/replace-node"
		makeBody = func() map[string]any {
			return map[string]any{"oldNodeId": *old, "newNodeId": *replacement, "newRaftAddr": *raftAddr}
		}
	default:
		fmt.Fprintf(stderr, "gigaledger cluster: unknown command %q\n\n%s", command, clusterUsage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gigaledger cluster %s: unexpected argument %q\n", command, fs.Arg(0))
		return 2
	}
	// The address is host:port (the scheme follows --ca); a URL given by habit became
	// http://http//... (found by a probe). A timeout must leave time to answer.
	if _, _, err := net.SplitHostPort(*addr); err != nil || strings.Contains(*addr, "/") {
		fmt.Fprintf(stderr, "gigaledger cluster %s: --addr %q: want host:port (no scheme: --ca selects https)\n", command, *addr)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "gigaledger cluster %s: --timeout must be positive\n", command)
		return 2
	}
	if *token == "" {
		*token = os.Getenv(adminTokenEnv)
	}
	client, scheme, err := adminClient(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger cluster: %v\n", err)
		return 2
	}
	var payload io.Reader
	if makeBody != nil {
		encoded, err := json.Marshal(makeBody())
		if err != nil {
			fmt.Fprintf(stderr, "gigaledger cluster: %v\n", err)
			return 2
		}
		payload = bytes.NewReader(encoded)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+*addr+path, payload)
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger cluster: %v\n", err)
		return 2
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger cluster %s: %v\n", command, err)
		return 1
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, clusterAnswerBytesMax))
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger cluster %s: read the answer: %v\n", command, err)
		return 1
	}
	var indented bytes.Buffer
	if json.Indent(&indented, answer, "", "  ") == nil {
		answer = indented.Bytes()
	}
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stderr, "gigaledger cluster %s: %s: %s\n", command, resp.Status, strings.TrimSpace(string(answer)))
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(answer))
	return 0
}

// adminClient is the HTTP client for a node's admin API: plain, or HTTPS trusting only the CA
// in caFile.
func adminClient(caFile string) (*http.Client, string, error) {
	if caFile == "" {
		return &http.Client{}, "http", nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, "", err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}, "https", nil
}
