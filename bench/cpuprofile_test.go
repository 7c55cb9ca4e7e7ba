package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// --cpuprofile writes a CPU profile of the harness (gzip-compressed protobuf, as pprof reads
// it); a path that cannot be created fails the run before any load.
func TestCPUProfileFlag(t *testing.T) {
	server := newRealHandlerServer(t)
	path := filepath.Join(t.TempDir(), "harness.prof")
	args := []string{"--target", server.URL, "--token", "secret", "--clients", "2", "--wallets", "10",
		"--ops", "200", "--duration", "30s", "--progress", "off", "--cpuprofile", path}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	unzipped, err := gzip.NewReader(file)
	if err != nil {
		t.Fatalf("the profile is not gzip: %v", err)
	}
	if data, err := io.ReadAll(unzipped); err != nil || len(data) == 0 {
		t.Fatalf("the profile: %d bytes, %v", len(data), err)
	}

	stderr.Reset()
	args[len(args)-1] = filepath.Join(t.TempDir(), "missing", "harness.prof")
	if code := Main(context.Background(), args, &stdout, &stderr); code != exitFailure || !bytes.Contains(stderr.Bytes(), []byte("--cpuprofile")) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
