// Command bigtable-emulator serves Google's in-memory Bigtable fake (bttest) over gRPC: the
// same server as `gcloud beta emulators bigtable`, built from the Go module proxy.
//
// It prints "listening on HOST:PORT" once ready and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/bigtable/bttest"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 to listen on; 0 picks a free one")
	flag.Parse()

	server, err := bttest.NewServer(fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("starting the Bigtable fake: %v", err)
	}
	defer server.Close()
	fmt.Printf("listening on %s\n", server.Addr)
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
