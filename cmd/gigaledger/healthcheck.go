package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// healthcheckBodyBytesMax bounds how much of a /readyz answer is read: it is a short JSON object.
const healthcheckBodyBytesMax = 64 << 10

// healthcheck is `gigaledger healthcheck`: exit 0 when the node's admin listener answers
// /readyz with 200, 1 otherwise, printing one line either way. It is the Docker HEALTHCHECK of
// the FROM-scratch image, which has no shell or curl.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAdminAddr, "the node's admin listen address (host:port)")
	token := fs.String("token", "", "admin bearer token (or env "+adminTokenEnv+"); /readyz does not need one today")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	caFile := fs.String("ca", "", "the CA certificate that signed --http-tls-cert: ask over HTTPS, verifying the node with it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gigaledger healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *token == "" {
		*token = os.Getenv(adminTokenEnv)
	}
	client := http.DefaultClient
	scheme := "http"
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "gigaledger healthcheck: %v\n", err)
			return 2
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "gigaledger healthcheck: %s holds no PEM certificate\n", *caFile)
			return 2
		}
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
		scheme = "https"
	}
	ready, line := checkReady(ctx, client, scheme+"://"+*addr+"/readyz", *token, *timeout)
	if !ready {
		fmt.Fprintf(stderr, "gigaledger healthcheck: %s\n", line)
		return 1
	}
	fmt.Fprintf(stdout, "ready: %s\n", line)
	return 0
}

// checkReady asks url (a node's /readyz) and returns whether it answered 200, with a one-line
// explanation: the node's own message, or what went wrong reaching it.
func checkReady(ctx context.Context, client *http.Client, url, token string, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, healthcheckBodyBytesMax))
	var answer struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Error   struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	message := answer.Message
	if message == "" {
		message = answer.Error.Message
	}
	if message == "" {
		message = strings.Join(strings.Fields(string(body)), " ") // one line, whatever it was
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("GET %s: %s: %s", url, resp.Status, message)
	}
	return true, message
}
