package testenv

import (
	"bytes"
	"context"
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
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/apmtel once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "apmtel-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "apmtel")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/apmtel")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(b)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build apmtel: %v", buildErr)
	}
	return binPath
}

// RemoveBinary deletes the binary Binary built, if any; for TestMain after m.Run.
func RemoveBinary() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Env is the process environment without any APMTEL_ variable of the
// caller, plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APMTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Procs are the apmtel processes one test runs. A process is expected to
// stay up until the test ends, or until the test stops, kills or waits for
// it: Eventually fails at once when one exits early, and at the end of the
// test each one still running must stop cleanly on SIGTERM.
type Procs struct {
	t  testing.TB
	mu sync.Mutex
	up []*Proc
}

// NewProcs returns the process set of test t.
func NewProcs(t testing.TB) *Procs { return &Procs{t: t} }

// Proc is an apmtel process started by a test.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	ps   *Procs
	out  Buffer
	done chan struct{}
	err  error // the exit error, set before done is closed
}

// Output is what the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Buffer collects output that a test reads while a process or a logger
// still writes it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start runs `apmtel args...` with env. When the test ends the process gets
// SIGTERM and must exit cleanly within 15 s; its output is logged when the
// test failed.
func (ps *Procs) Start(name string, env []string, args ...string) *Proc {
	t := ps.t
	t.Helper()
	p := &Proc{Name: name, ps: ps, done: make(chan struct{})}
	p.Cmd = exec.Command(Binary(t), args...)
	p.Cmd.Env = env
	p.Cmd.Stdout, p.Cmd.Stderr = &p.out, &p.out
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	ps.mu.Lock()
	ps.up = append(ps.up, p)
	ps.mu.Unlock()
	t.Cleanup(func() {
		expected := ps.release(p)
		select {
		case <-p.done:
			if expected {
				t.Errorf("%s exited (%v) before the test ended", name, p.err)
			}
		default:
			if err := p.Stop(15 * time.Second); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, p.Output())
		}
	})
	return p
}

// release takes p off the processes expected up; false if it was not there.
func (ps *Procs) release(p *Proc) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.up {
		if q == p {
			ps.up = append(ps.up[:i], ps.up[i+1:]...)
			return true
		}
	}
	return false
}

// exited returns a process expected up that has exited, or nil.
func (ps *Procs) exited() *Proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.up {
		select {
		case <-p.done:
			return p
		default:
		}
	}
	return nil
}

// Kill SIGKILLs the process and waits for it to exit.
func (p *Proc) Kill() {
	p.ps.t.Helper()
	p.ps.release(p)
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-p.done: // already gone
		default:
			p.ps.t.Fatalf("kill %s: %v", p.Name, err)
		}
	}
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for a clean exit; after that
// the process is killed and Stop says so.
func (p *Proc) Stop(timeout time.Duration) error {
	p.ps.release(p)
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("exited with %v", p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within %s of SIGTERM", timeout)
	}
}

// Wait waits up to timeout for the process to exit by itself (a failpoint,
// a fatal error) and reports whether it did; it is no longer expected up.
func (p *Proc) Wait(timeout time.Duration) bool {
	p.ps.release(p)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Eventually polls f every 100 ms until it holds or timeout passes; it
// fails at once when a process expected up has exited.
func (ps *Procs) Eventually(timeout time.Duration, what string, f func() bool) {
	t := ps.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		if p := ps.exited(); p != nil {
			t.Fatalf("%s exited (%v) while waiting for %s:\n%s", p.Name, p.err, what, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// Exec runs `apmtel args...` to completion (at most 5 minutes).
func Exec(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return o.String(), e.String(), code
}

// FreeAddr returns a loopback address that nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Eventually polls f every 100 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// Script runs one of the project's scripts (scripts/NAME args...) and fails
// the test with its output when it fails.
func Script(t testing.TB, name string, args ...string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", name), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/%s %v: %v\n%s", name, args, err, b)
	}
}
