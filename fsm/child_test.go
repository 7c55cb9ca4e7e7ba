package fsm

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"
)

// testChild is this test binary started again to run one test as a child process (the kill -9
// tests): its stdin is a pipe, and the lines it writes to stdout arrive on lines, which is
// closed when it exits.
type testChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startTestChild starts the child running test, with env added to this process's environment.
func startTestChild(t *testing.T, test string, env ...string) *testChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &testChild{cmd: cmd, stdin: stdin, lines: make(chan string, 8)}
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			c.lines <- scanner.Text()
		}
		close(c.lines)
	}()
	return c
}
