package fleet

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// logFile is a log sink safe for concurrent writes (one write call per
// zerolog event, on a file) that a test reads back.
type logFile struct {
	*os.File
}

func newLogFile(t *testing.T) logFile {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return logFile{f}
}

func (l logFile) String() string {
	b, _ := os.ReadFile(l.Name())
	return string(b)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	// Write and rename, as editors and ConfigMap updates do.
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// A reload against a real file: a malformed file keeps the old Set; a
// missing CA disables its cluster only, with the reason; the CA appearing
// brings it back without an edit of the clusters file.
func TestWatcherReload(t *testing.T) {
	t.Parallel()
	d := fixture(t)
	path := filepath.Join(d, "clusters.yaml")
	two := strings.ReplaceAll(`clusters:
  - name: eu
    urls: ["https://es-eu:9200"]
    api_key_file: $D/api-key
    ca_cert: $D/ca.pem
  - name: us
    urls: ["https://es-us:9200"]
    username: apmtel
    password_file: $D/password
`, "$D", d)
	writeFile(t, path, two)
	logs := newLogFile(t)
	w, err := NewWatcher(path, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	first := w.Current()
	if got := first.Names(); len(got) != 2 || len(first.Enabled()) != 2 {
		t.Fatalf("first set %v enabled %d", got, len(first.Enabled()))
	}
	sub, cancel := w.Subscribe()
	defer cancel()

	// Unchanged: nothing new.
	if changed, err := w.Reload(); changed || err != nil {
		t.Fatalf("unchanged file: changed=%v err=%v", changed, err)
	}

	// Malformed: refused whole, the previous Set stays, nobody is told.
	writeFile(t, path, two+"  - name: eu\n    urlz: []\n")
	changed, err := w.Reload()
	if changed || err == nil || !strings.HasPrefix(err.Error(), path+":11: unknown key \"urlz\"") {
		t.Fatalf("malformed: changed=%v err=%v", changed, err)
	}
	if w.Current().Version() != first.Version() || w.Err() == nil {
		t.Fatalf("set replaced by a malformed file")
	}
	select {
	case s := <-sub:
		t.Fatalf("subscriber got %v", s.Names())
	default:
	}
	// A file left broken is reported once.
	_, _ = w.Reload()
	if n := strings.Count(logs.String(), "clusters file refused"); n != 1 {
		t.Fatalf("refusal logged %d times:\n%s", n, logs.String())
	}

	// Well formed, one CA missing: that cluster alone is disabled.
	third := two + strings.ReplaceAll("  - name: ap\n    urls: [\"https://es-ap:9200\"]\n    ca_cert: $D/ap-ca.pem\n", "$D", d)
	writeFile(t, path, third)
	if changed, err := w.Reload(); !changed || err != nil {
		t.Fatalf("CA missing: changed=%v err=%v", changed, err)
	}
	s := <-sub
	ap, _ := s.Get("ap")
	if ap.Enabled || ap.DisabledReason != "ca_cert "+d+"/ap-ca.pem: no such file or directory" {
		t.Fatalf("ap enabled=%v reason %q", ap.Enabled, ap.DisabledReason)
	}
	if en := s.Enabled(); len(en) != 2 || en[0].Name != "eu" || en[1].Name != "us" {
		t.Fatalf("enabled %v", en)
	}
	if w.Err() != nil {
		t.Fatalf("Err after a good reload: %v", w.Err())
	}
	// The first Set, held by a run in flight, is unchanged.
	if first.Len() != 2 {
		t.Fatalf("old snapshot changed: %v", first.Names())
	}

	// The CA appears: the cluster comes back, the file untouched.
	if err := os.WriteFile(filepath.Join(d, "ap-ca.pem"), []byte(realPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.Reload(); !changed || err != nil {
		t.Fatalf("CA appeared: changed=%v err=%v", changed, err)
	}
	s = <-sub
	if ap, _ := s.Get("ap"); !ap.Enabled {
		t.Fatalf("ap still disabled: %q", ap.DisabledReason)
	}
	out := logs.String()
	if !strings.Contains(out, `"cluster":"ap"`) || !strings.Contains(out, "cluster disabled: ca_cert") {
		t.Fatalf("disabled cluster not logged:\n%s", out)
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "c2VjcmV0") {
		t.Fatalf("a secret was logged:\n%s", out)
	}
}

func TestWatcherRefusesAtStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "clusters.yaml")
	writeFile(t, path, "clusters:\n  - name: UPPER\n")
	if _, err := NewWatcher(path, zerolog.Nop()); err == nil || !strings.HasPrefix(err.Error(), path+":2: name: invalid source name") {
		t.Fatalf("error %v", err)
	}
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "absent.yaml"), zerolog.Nop()); err == nil || !strings.HasSuffix(err.Error(), "absent.yaml: no such file or directory") {
		t.Fatalf("error %v", err)
	}
}

// Run reloads on SIGHUP without waiting for the poll.
func TestWatcherReloadsOnSIGHUP(t *testing.T) {
	// Not parallel: it signals the whole test process. A Notify of its own
	// keeps a SIGHUP sent before Run listens from ending the process.
	keep := make(chan os.Signal, 1)
	signal.Notify(keep, syscall.SIGHUP)
	defer signal.Stop(keep)
	d := fixture(t)
	path := filepath.Join(d, "clusters.yaml")
	writeFile(t, path, "clusters:\n  - name: a\n    urls: [\"http://127.0.0.1:9200\"]\n")
	w, err := NewWatcher(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	sub, cancel := w.Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx, time.Hour)
	writeFile(t, path, "clusters:\n  - name: a\n    urls: [\"http://127.0.0.1:9200\"]\n  - name: b\n    urls: [\"http://127.0.0.1:9201\"]\n")
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case s := <-sub:
			if got := s.Names(); len(got) != 2 || got[1] != "b" {
				t.Fatalf("names %v", got)
			}
			return
		case <-tick.C:
			_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
		case <-deadline:
			t.Fatal("no reload after SIGHUP")
		}
	}
}

// A file that disappears (a volume being remounted) keeps the set in force.
func TestWatcherKeepsSetWhenFileVanishes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "clusters.yaml")
	writeFile(t, path, "clusters:\n  - name: a\n    urls: [\"http://127.0.0.1:9200\"]\n")
	w, err := NewWatcher(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	v := w.Current().Version()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	changed, err := w.Reload()
	if changed || err == nil || !strings.HasSuffix(err.Error(), "clusters.yaml: no such file or directory") {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if w.Current().Version() != v || w.Current().Len() != 1 {
		t.Fatal("set lost with its file")
	}
	writeFile(t, path, "clusters:\n  - name: a\n    urls: [\"http://127.0.0.1:9200\"]\n")
	if changed, err := w.Reload(); changed || err != nil || w.Err() != nil {
		t.Fatalf("same file back: changed=%v err=%v Err=%v", changed, err, w.Err())
	}
}
