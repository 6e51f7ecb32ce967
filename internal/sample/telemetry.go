package sample

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// TelemetryOptions shape `apmtel sample telemetry` (Kibana's
// scripts/upload_telemetry_data, spec §5).
type TelemetryOptions struct {
	Instances int
	Days      int
	Seed      int64
	Index     string
	// Chunk is the bulk size (Kibana: 250).
	Chunk    int
	Now      time.Time
	Progress io.Writer
}

// TelemetryDocs returns the sample documents for the telemetry object apm:
// per instance a random cluster_uuid and a variation in [0.1, 4), per day a
// growth of 1.005^(days-1-d), numbers scaled and rounded, booleans random,
// strings and arrays unchanged, one timestamp per day ending today (Kibana's
// Date.UTC(year, month, -d) ends on the last day of the previous month).
func TelemetryDocs(apm map[string]any, o TelemetryOptions, emit func(Doc) error) error {
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x5eed))
	today := time.Date(o.Now.Year(), o.Now.Month(), o.Now.Day(), 0, 0, 0, 0, time.UTC)
	for i := 0; i < o.Instances; i++ {
		uuid := uuid4(r)
		variation := 0.1 + r.Float64()*3.9
		for d := 0; d < o.Days; d++ {
			growth := math.Pow(1.005, float64(o.Days-1-d))
			ts := today.AddDate(0, 0, -d)
			doc := map[string]any{
				"cluster_uuid": uuid,
				"cluster_name": fmt.Sprintf("sample-%d", i),
				"timestamp":    ts.Format(time.RFC3339),
				"version":      "8.15.0",
				"collection":   "local",
				"stack_stats":  map[string]any{"kibana": map[string]any{"plugins": map[string]any{"apm": scale(apm, variation*growth, r)}}},
			}
			if err := emit(Doc{Index: o.Index, ID: uuid + ":" + ts.Format("2006-01-02"), Source: doc}); err != nil {
				return err
			}
		}
	}
	return nil
}

// scale walks plain objects; arrays are leaves, as in Kibana's script.
func scale(v any, factor float64, r *rand.Rand) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			out[k] = scale(c, factor, r)
		}
		return out
	case float64:
		return math.Round(factor * x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x
		}
		return math.Round(factor * f)
	case bool:
		return r.Float64() > 0.5
	default:
		return v
	}
}

func uuid4(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// LoadTelemetry bulk-indexes the sample documents in chunks, sequentially,
// and stops at the first failed item with its error. It returns the count.
func LoadTelemetry(ctx context.Context, d es.Doer, apm map[string]any, o TelemetryOptions) (int, error) {
	if o.Instances < 1 || o.Days < 1 {
		return 0, fmt.Errorf("sample telemetry: instances and days must be at least 1")
	}
	if o.Chunk <= 0 {
		o.Chunk = 250
	}
	total := o.Instances * o.Days
	var chunk []Doc
	n := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := Bulk(ctx, d, chunk, false); err != nil {
			return fmt.Errorf("sample telemetry: after %d of %d documents: %w", n, total, err)
		}
		n += len(chunk)
		chunk = chunk[:0]
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "sample telemetry: %d/%d documents\n", n, total)
		}
		return nil
	}
	err := TelemetryDocs(apm, o, func(doc Doc) error {
		chunk = append(chunk, doc)
		if len(chunk) >= o.Chunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, err
	}
	return n, Refresh(ctx, d, o.Index)
}
