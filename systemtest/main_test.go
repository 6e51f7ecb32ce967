package systemtest

import (
	"flag"
	"os"
	"strconv"
	"testing"

	"github.com/apmtel/apmtel/internal/testenv"
)

// parallel is how many tests of this package run at once unless -parallel
// is given: they mostly wait (lease recovery, deadlines, retries) on
// processes of their own, each test on its own Redis database and index
// prefix, so far more than GOMAXPROCS of them overlap usefully.
const parallel = 10

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(parallel))
	}
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}
