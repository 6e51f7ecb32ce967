package boundedfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(small, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	atLimit := filepath.Join(dir, "limit")
	over := filepath.Join(dir, "over")
	if err := os.WriteFile(atLimit, make([]byte, Limit), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(over, make([]byte, Limit+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		size    int
		wantErr string
	}{
		{small, 28, ""},
		{atLimit, Limit, ""},
		{over, 0, over + ": file too large: more than 4 MiB"},
		{"/dev/zero", 0, "/dev/zero: file too large"},
		{filepath.Join(dir, "missing"), 0, "no such file"},
	}
	for _, tc := range tests {
		start := time.Now()
		b, err := Read(tc.path)
		took := time.Since(start)
		switch {
		case tc.wantErr == "" && (err != nil || len(b) != tc.size):
			t.Errorf("%s: %d bytes, %v; want %d bytes", tc.path, len(b), err, tc.size)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || b != nil):
			t.Errorf("%s: %v, want an error with %q and no content", tc.path, err, tc.wantErr)
		}
		if tc.path == "/dev/zero" && (!errors.Is(err, ErrTooLarge) || took > time.Second) {
			t.Errorf("/dev/zero: %v after %s, want ErrTooLarge within a second", err, took)
		}
	}
}
