package relay

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// MosquittoRequiredEnv, set to 1 (as `make mqtt-test` does), turns a missing mosquitto from a
// skipped test into a failed one.
const MosquittoRequiredEnv = "GIGALEDGER_TEST_MOSQUITTO"

// mosquittoStartTimeout bounds how long a started broker may take to accept connections.
const mosquittoStartTimeout = 15 * time.Second

// mosquittoBinary finds Debian's mosquitto (in PATH or /usr/sbin, which a non-root PATH often
// lacks), or skips the test — fails it when MosquittoRequiredEnv is set.
func mosquittoBinary(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("mosquitto"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	if os.Getenv(MosquittoRequiredEnv) == "1" {
		t.Fatalf("mosquitto not found in PATH or /usr/sbin, and %s=1 requires it", MosquittoRequiredEnv)
	}
	t.Skip("mosquitto not found in PATH or /usr/sbin; `make mqtt-test` installs it and runs these tests")
	return ""
}

// mosquittoOptions configure a test broker.
type mosquittoOptions struct {
	users      map[string]string // username → password; none: anonymous access
	persistent bool              // keep sessions in a database that survives a SIGKILL
	tls        *mosquittoTLS     // a TLS listener instead of plain TCP
}

type mosquittoTLS struct{ caFile, certFile, keyFile string }

// mosquitto is a broker this test started, on loopback, with its files in a temporary
// directory. Kill and start it again to restart it on the same port.
type mosquitto struct {
	t      *testing.T
	binary string
	dir    string
	addr   string // 127.0.0.1:port
	config string

	mu      sync.Mutex
	process *os.Process
	exited  chan struct{} // closed when the running process has exited
	output  *lockedBuffer
}

// startMosquitto starts a broker and returns once it accepts connections. It is killed when
// the test ends.
func startMosquitto(t *testing.T, opts mosquittoOptions) *mosquitto {
	t.Helper()
	m := &mosquitto{t: t, binary: mosquittoBinary(t), dir: t.TempDir(), addr: testutil.FreeAddr(t)}
	_, port, _ := net.SplitHostPort(m.addr)
	var config strings.Builder
	fmt.Fprintf(&config, "listener %s 127.0.0.1\n", port)
	if len(opts.users) == 0 {
		config.WriteString("allow_anonymous true\n")
	} else {
		config.WriteString("allow_anonymous false\n")
		fmt.Fprintf(&config, "password_file %s\n", m.passwordFile(opts.users))
	}
	if opts.tls != nil {
		fmt.Fprintf(&config, "cafile %s\ncertfile %s\nkeyfile %s\n", opts.tls.caFile, opts.tls.certFile, opts.tls.keyFile)
	}
	if opts.persistent {
		// Saved after every change (a subscription, a queued message), so a SIGKILL keeps the
		// subscriber's session as a real broker with a durable store would.
		fmt.Fprintf(&config, "persistence true\npersistence_location %s/\nautosave_interval 1\nautosave_on_changes true\n", m.dir)
	} else {
		config.WriteString("persistence false\n")
	}
	if os.Geteuid() == 0 {
		// As root mosquitto switches to the user "mosquitto", who cannot read the test's files.
		config.WriteString("user root\n")
	}
	config.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
	m.config = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.config, []byte(config.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.kill)
	m.start()
	return m
}

// passwordFile writes users' passwords in mosquitto's format, with mosquitto_passwd when it is
// installed (Debian ships it with the broker), else as its SHA-512 form ($6$), which mosquitto
// also reads.
func (m *mosquitto) passwordFile(users map[string]string) string {
	path := filepath.Join(m.dir, "passwords")
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err == nil {
		for user, password := range users {
			args := []string{"-b", path, user, password}
			if _, err := os.Stat(path); err != nil {
				args = append([]string{"-c"}, args...)
			}
			if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
				m.t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		return path
	}
	var lines strings.Builder
	for user, password := range users {
		salt := make([]byte, 12)
		_, _ = rand.Read(salt)
		sum := sha512.Sum512(append([]byte(password), salt...))
		fmt.Fprintf(&lines, "%s:$6$%s$%s\n", user, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(sum[:]))
	}
	if err := os.WriteFile(path, []byte(lines.String()), 0o600); err != nil {
		m.t.Fatal(err)
	}
	return path
}

// url is the broker's tcp:// (or ssl://) address.
func (m *mosquitto) url(scheme string) string { return scheme + "://" + m.addr }

// start runs the broker and waits until it accepts connections; a broker that exits first
// (its port taken, a bad configuration) fails the test with its output.
func (m *mosquitto) start() {
	m.t.Helper()
	output := &lockedBuffer{}
	cmd := exec.Command(m.binary, "-c", m.config)
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.mu.Lock()
	m.process, m.exited, m.output = cmd.Process, exited, output
	m.mu.Unlock()
	deadline := time.Now().Add(mosquittoStartTimeout)
	for {
		select {
		case <-exited:
			m.t.Fatalf("mosquitto exited before accepting connections:\n%s", output.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not accept connections on %s within %s:\n%s", m.addr, mosquittoStartTimeout, output.String())
		}
		select {
		case <-exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill ends the broker with SIGKILL (no goodbye to its clients) and waits for it to exit.
func (m *mosquitto) kill() {
	m.mu.Lock()
	process, exited := m.process, m.exited
	m.process = nil
	m.mu.Unlock()
	if process == nil {
		return
	}
	_ = process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		m.t.Errorf("mosquitto (pid %d) did not exit 10 s after SIGKILL", process.Pid)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
