package faultproxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// Upstream time counts the target's answer only: an injected delay is the
// "remote cluster" and stays out of it.
func TestStatsCountUpstreamTimeWithoutInjectedDelay(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer target.Close()
	u, _ := url.Parse(target.URL)
	p := New(u)
	p.SetFault(Fault{Mode: "delay", DelayMS: 200})
	front := httptest.NewServer(p)
	defer front.Close()
	for range 2 {
		res, err := http.Get(front.URL + "/_search")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			t.Fatalf("header missing: %v", res.Header)
		}
	}
	st := p.Stats()
	if st.Requests != 2 || st.Faulted != 2 || st.MaxInFlight != 1 {
		t.Fatalf("stats %+v", st)
	}
	if st.UpstreamMS < 60 || st.UpstreamMS >= 400 || st.MaxUpstreamMS < 30 || st.MaxUpstreamMS >= 200 {
		t.Fatalf("upstream %.1f ms (max %.1f): want the target's 2 × 30 ms, not the injected 2 × 200 ms", st.UpstreamMS, st.MaxUpstreamMS)
	}
}
