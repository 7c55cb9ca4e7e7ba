package fsm

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Environment of the child process TestRestoreKilled starts (this test binary again).
const (
	restoreChildDirEnv  = "GIGALEDGER_RESTORE_CHILD_DIR"
	restoreChildStepEnv = "GIGALEDGER_RESTORE_CHILD_STEP"
)

// TestRestoreChild is the child's side of TestRestoreKilled: it restores the stream on stdin
// into the store in its directory and, at the named step, says so and waits to be killed.
func TestRestoreChild(t *testing.T) {
	dir := os.Getenv(restoreChildDirEnv)
	if dir == "" {
		t.Skip("the child process of TestRestoreKilled")
	}
	m, err := Open(dir, nil, testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	step := os.Getenv(restoreChildStepEnv)
	restoreCrashHook = func(at string) error {
		if at == step {
			os.Stdout.WriteString("at " + at + "\n")
			select {} // until SIGKILL
		}
		return nil
	}
	os.Stdout.WriteString("restoring\n")
	if err := m.Restore(io.NopCloser(os.Stdin)); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreKilled kills -9 a process in the middle of a restore — while it reads the stream,
// and at every step of the swap — and reopens its directory: the store opens, holds the old
// state or the new one, never a mix, and applies on.
func TestRestoreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	src := newTestMachine(t, testRegistry())
	src.bumpMany("a", 5000)
	descriptor, err := src.m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	stream := checkpointBytes(t, src.m, descriptor)
	newDigest := src.digest()

	for _, step := range []struct {
		name    string
		wantNew bool
	}{{"reading", false}, {"built", false}, {"live moved aside", true}, {"swapped", true}} {
		t.Run(step.name, func(t *testing.T) {
			dir := t.TempDir()
			m, err := Open(dir, nil, testRegistry())
			if err != nil {
				t.Fatal(err)
			}
			old := &testMachine{t: t, m: m, now: 1_700_000_000_000}
			old.bumpMany("old", 50)
			oldDigest := old.digest()
			m.Close()

			c := startTestChild(t, "TestRestoreChild", restoreChildDirEnv+"="+dir, restoreChildStepEnv+"="+step.name)
			child, stdin, lines := c.cmd, c.stdin, c.lines
			waitLine := func(want string) {
				deadline := time.After(30 * time.Second)
				for {
					select {
					case line, ok := <-lines:
						if !ok {
							t.Fatalf("child exited before %q", want)
						}
						if line == want {
							return
						}
					case <-deadline:
						t.Fatalf("child did not say %q", want)
					}
				}
			}
			waitLine("restoring")
			if step.name == "reading" {
				// Half the stream, then wait until the child has written part of the new store.
				if _, err := stdin.Write(stream[:len(stream)/2]); err != nil {
					t.Fatal(err)
				}
				restoring := filepath.Join(dir, storeDirName+".restore")
				deadline := time.Now().Add(30 * time.Second)
				for {
					entries, _ := os.ReadDir(restoring)
					if len(entries) > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the child wrote nothing of the new store")
					}
					time.Sleep(5 * time.Millisecond) // polling a directory: no event to wait on
				}
			} else {
				go func() {
					stdin.Write(stream)
					stdin.Close()
				}()
				waitLine("at " + step.name)
			}
			if err := child.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			var exit *exec.ExitError
			if err := child.Wait(); !errors.As(err, &exit) || !strings.Contains(exit.String(), "killed") {
				t.Fatalf("child ended with %v, want killed", err)
			}

			reopened, err := Open(dir, nil, testRegistry())
			if err != nil {
				t.Fatalf("reopen after kill -9 at %q: %v", step.name, err)
			}
			defer reopened.Close()
			got, err := reopened.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool][32]byte{false: oldDigest, true: newDigest}[step.wantNew]; got != want {
				t.Fatalf("after kill -9 at %q: digest is not the %s state's", step.name, map[bool]string{false: "old", true: "new"}[step.wantNew])
			}
			after := &testMachine{t: t, m: reopened, index: reopened.AppliedIndex(), now: 1_800_000_000_000}
			after.bumpMany("more", 10)
		})
	}
}
