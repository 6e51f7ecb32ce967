package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/apmtel/apmtel/internal/boundedfile"
)

// SecretFile is a secret held in a file (a Kubernetes Secret mounted as a
// file, a Docker secret). Read returns its content, trimmed of surrounding
// white space, re-reading the file whenever its size or modification time
// changed, so a rotated secret is used from the next request on.
//
// A SecretFile never shows its content: String, GoString and MarshalJSON
// give the path only. The zero value (no path) reads as "".
type SecretFile struct {
	path  string
	cache *secretCache
}

type secretCache struct {
	mu    sync.Mutex
	size  int64
	mtime time.Time
	value string
}

// NewSecretFile returns the secret held in path.
func NewSecretFile(path string) SecretFile {
	if path == "" {
		return SecretFile{}
	}
	return SecretFile{path: path, cache: &secretCache{size: -1}}
}

// Path is the file's path ("" when unset).
func (s SecretFile) Path() string { return s.path }

// IsSet reports whether the secret names a file.
func (s SecretFile) IsSet() bool { return s.path != "" }

// Read returns the secret. An error names the file, never its content.
func (s SecretFile) Read() (string, error) {
	if s.path == "" {
		return "", nil
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", s.path, unwrapPath(err))
	}
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.Size() == c.size && st.ModTime().Equal(c.mtime) {
		return c.value, nil
	}
	b, err := boundedfile.Read(s.path)
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", s.path, unwrapPath(err))
	}
	v := string(bytes.TrimSpace(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s: empty", s.path)
	}
	c.size, c.mtime, c.value = st.Size(), st.ModTime(), v
	return v, nil
}

// String shows the path, never the secret.
func (s SecretFile) String() string {
	if s.path == "" {
		return "(none)"
	}
	return "file:" + s.path
}

// GoString keeps %#v from printing the cached secret.
func (s SecretFile) GoString() string { return "fleet.SecretFile(" + s.String() + ")" }

// MarshalJSON shows the path, never the secret.
func (s SecretFile) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", s.path)), nil
}

// unwrapPath drops the *PathError wrapper, whose text repeats the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
