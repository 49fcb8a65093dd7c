// Command gcs-emulator serves fake-gcs-server (github.com/fsouza/fake-gcs-server), an
// in-memory stand-in for Cloud Storage's JSON API, over plain HTTP. Google publishes no GCS
// emulator; this one is what google-cloud-storage reaches through STORAGE_EMULATOR_HOST, so
// the job's gs:// objects (spec, stop marker, the Pub/Sub reader's stored batches) are tested
// against an HTTP server speaking the real API rather than a mock.
//
// It prints "listening on URL" once ready and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

func main() {
	port := flag.Uint("port", 0, "TCP port on 127.0.0.1 to listen on; 0 picks a free one")
	flag.Parse()
	if *port > 65535 {
		log.Fatalf("-port %d is not a TCP port", *port)
	}

	server, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http",
		Host:   "127.0.0.1",
		Port:   uint16(*port),
	})
	if err != nil {
		log.Fatalf("starting the fake: %v", err)
	}
	defer server.Stop()
	fmt.Printf("listening on %s\n", server.URL())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
