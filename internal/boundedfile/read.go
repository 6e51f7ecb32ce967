package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Limit is the largest file Read accepts: far above any certificate bundle
// (Mozilla's is about 220 KB), secret or key set, far below what could
// hurt a process.
const Limit = 4 << 20

// ErrTooLarge is wrapped by Read's error for a file larger than Limit.
var ErrTooLarge = errors.New("file too large")

// Read returns the content of the file at path, or an error naming the path
// when it cannot be read or holds more than Limit bytes (an endless device
// such as /dev/zero included: at most Limit+1 bytes are ever read).
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, Limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > Limit {
		return nil, fmt.Errorf("%s: %w: more than %d MiB (a configured file is at most that)", path, ErrTooLarge, Limit>>20)
	}
	return b, nil
}
