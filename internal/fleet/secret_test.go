package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretFileRotatesAndNeverPrints(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("first-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewSecretFile(p)
	if v, err := s.Read(); err != nil || v != "first-secret" {
		t.Fatalf("read %q %v", v, err)
	}
	// Rotation: a new content (and mtime) is read on the next use.
	if err := os.WriteFile(p, []byte("second-secret-longer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Read(); err != nil || v != "second-secret-longer" {
		t.Fatalf("after rotation %q %v", v, err)
	}
	b, _ := json.Marshal(struct{ K SecretFile }{s})
	for _, out := range []string{s.String(), fmt.Sprintf("%v %+v %#v", s, s, s), string(b)} {
		if strings.Contains(out, "secret-longer") || !strings.Contains(out, p) {
			t.Fatalf("printed form %q: want the path, never the secret", out)
		}
	}
	cr := Credentials{APIKey: "second-secret-longer"}
	if out := fmt.Sprintf("%v %+v %#v %s", cr, cr, cr, cr); strings.Contains(out, "secret-longer") {
		t.Fatalf("credentials printed: %q", out)
	}
	// Empty or gone: an error naming the file.
	if err := os.WriteFile(p, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, future.Add(time.Minute), future.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(); err == nil || err.Error() != "secret file "+p+": empty" {
		t.Fatalf("empty: %v", err)
	}
	os.Remove(p)
	if _, err := s.Read(); err == nil || !strings.Contains(err.Error(), p+": no such file") {
		t.Fatalf("gone: %v", err)
	}
}
