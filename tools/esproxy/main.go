// Command esproxy is a test-harness reverse proxy in front of OpenSearch.
//
// go-elasticsearch v8 refuses any server whose answers lack the header
// "X-Elastic-Product: Elasticsearch". OpenSearch serves the same query DSL
// but not that header, so the tests (and the local demo, which runs on
// OpenSearch because Elasticsearch cannot be installed here) reach it
// through this proxy, which adds the header. It is never used in front of a
// real Elasticsearch. It can also inject faults for the fault suite.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	target := flag.String("target", "http://127.0.0.1:9200", "OpenSearch URL")
	addrFile := flag.String("addr-file", "", "write the listening address to this file once ready")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatalf("esproxy: -target: %v", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(r *http.Response) error {
		r.Header.Set("X-Elastic-Product", "Elasticsearch")
		return nil
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
	log.Fatal(http.Serve(ln, proxy))
}
