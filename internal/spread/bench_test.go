package spread

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkOffset: the scheduler computes one offset per cluster per tick.
func BenchmarkOffset(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("cluster-%04d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = Offset(names[i%len(names)], 12*time.Hour, 3*time.Hour)
		i++
	}
}
