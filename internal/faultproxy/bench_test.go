package faultproxy

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkReplayRequest is the proxy's cost of one replayed answer (no
// delay) through a virtual cluster's port, over loopback, with the client's
// share included.
func BenchmarkReplayRequest(b *testing.B) {
	tape := NewTape()
	tape.answers[TapeKey(mustReq(b, "/_search", `{"size":0}`), []byte(`{"size":0}`))] = Answer{
		Status: 200, Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(strings.Repeat(`{"hits":{"total":{"value":1}}}`, 20)),
	}
	r := tape.Replayer(0)
	f, err := NewFleet(1, "b", func(int) http.Handler { return r })
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	u := f.Clusters()[0].URL() + "/_search"
	b.ReportAllocs()
	for b.Loop() {
		res, err := http.Post(u, "application/json", strings.NewReader(`{"size":0}`))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatal(res.StatusCode)
		}
	}
}

// BenchmarkFleet1000Ports is the memory of 1,000 idle virtual clusters.
func BenchmarkFleet1000Ports(b *testing.B) {
	r := NewTape().Replayer(0)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f, err := NewFleet(1000, "b", func(int) http.Handler { return r })
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/1000, "B/cluster")
		_ = f.Close()
	}
}

func mustReq(b *testing.B, path, body string) *http.Request {
	req, err := http.NewRequest("POST", "http://x"+path, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	return req
}
