// Command esproxy is the test-harness reverse proxy in front of OpenSearch
// (see internal/faultproxy): it adds the X-Elastic-Product header
// go-elasticsearch v8 insists on, and injects faults on request through
// POST /__proxy/fault. The tests and the local demo reach OpenSearch through
// it; it is never used in front of a real Elasticsearch.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/apmtel/apmtel/internal/faultproxy"
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
	log.Fatal(http.Serve(ln, faultproxy.New(u)))
}
