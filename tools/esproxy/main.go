// Command esproxy is the test-harness reverse proxy in front of OpenSearch
// (see internal/faultproxy): it adds the X-Elastic-Product header
// go-elasticsearch v8 insists on, and injects faults on request through
// POST /__proxy/fault. The tests and the local demo reach OpenSearch through
// it; it is never used in front of a real Elasticsearch.
//
// With -clusters N it also serves N virtual clusters on loopback ports (each
// its own name, cluster_uuid, faults and in-flight count; their stats at
// GET /__proxy/fleet on the main port) and writes a clusters file for them
// (-clusters-yaml). -record FILE records their answers to a tape (saved on
// SIGINT/SIGTERM and by POST /__proxy/save-tape); -replay FILE serves a
// tape instead of the engine, each answer after -replay-delay.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/apmtel/apmtel/internal/faultproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	target := flag.String("target", "http://127.0.0.1:9200", "OpenSearch URL")
	addrFile := flag.String("addr-file", "", "write the listening address to this file once ready")
	clusters := flag.Int("clusters", 0, "serve this many virtual clusters on loopback ports")
	prefix := flag.String("clusters-prefix", "vc", "name prefix of the virtual clusters")
	clustersYAML := flag.String("clusters-yaml", "", "write an APMTEL_CLUSTERS_FILE for the virtual clusters here")
	record := flag.String("record", "", "record the virtual clusters' answers to this tape file")
	replay := flag.String("replay", "", "serve the virtual clusters from this tape file instead of the engine")
	replayDelay := flag.Duration("replay-delay", 200*time.Millisecond, "delay of each replayed answer")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatalf("esproxy: -target: %v", err)
	}
	if *record != "" && *replay != "" {
		log.Fatal("esproxy: -record and -replay: choose one")
	}
	front := faultproxy.New(u)
	mux := http.NewServeMux()
	mux.Handle("/", front)

	var tape *faultproxy.Tape
	if *clusters > 0 {
		upstream := func(int) http.Handler { return faultproxy.New(u) }
		switch {
		case *record != "":
			tape = faultproxy.NewTape()
			upstream = func(int) http.Handler { return tape.Recorder(faultproxy.New(u)) }
		case *replay != "":
			t, err := faultproxy.LoadTape(*replay)
			if err != nil {
				log.Fatalf("esproxy: -replay: %v", err)
			}
			r := t.Replayer(*replayDelay)
			upstream = func(int) http.Handler { return r }
		}
		fleet, err := faultproxy.NewFleet(*clusters, *prefix, upstream)
		if err != nil {
			log.Fatalf("esproxy: %v", err)
		}
		defer fleet.Close()
		mux.HandleFunc("/__proxy/fleet", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(fleet.Stats())
		})
		if *clustersYAML != "" {
			var b strings.Builder
			b.WriteString("# virtual clusters of esproxy -clusters (test harness)\nclusters:\n")
			for _, v := range fleet.Clusters() {
				fmt.Fprintf(&b, "  - name: %s  # cluster_uuid %s\n    urls: [%q]\n", v.Name, v.UUID, v.URL())
			}
			if err := os.WriteFile(*clustersYAML, []byte(b.String()), 0o600); err != nil {
				log.Fatalf("esproxy: %v", err)
			}
		}
		fmt.Fprintf(os.Stderr, "esproxy: %d virtual clusters from %s\n", *clusters, fleet.Clusters()[0].URL())
	}
	if tape != nil {
		save := func() {
			if err := tape.Save(*record); err != nil {
				log.Printf("esproxy: save tape: %v", err)
				return
			}
			fmt.Fprintf(os.Stderr, "esproxy: %d answers saved to %s\n", tape.Len(), *record)
		}
		mux.HandleFunc("POST /__proxy/save-tape", func(w http.ResponseWriter, r *http.Request) {
			save()
			w.WriteHeader(http.StatusNoContent)
		})
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-sig
			save()
			os.Exit(0)
		}()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("esproxy: %v", err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			log.Fatalf("esproxy: %v", err)
		}
	}
	fmt.Fprintf(os.Stderr, "esproxy: %s -> %s\n", ln.Addr(), u)
	log.Fatal(http.Serve(ln, mux))
}
